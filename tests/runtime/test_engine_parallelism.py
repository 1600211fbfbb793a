"""Several people on one engine (issue 21): the engines are launched batching as many
requests as admission lets through to them — llama-server's `--parallel` slots with
continuous batching, mlx_lm.server's `--decode-concurrency` / `--prompt-concurrency` —
and admission's capacity per model is that same number."""

from __future__ import annotations

from pathlib import Path

import psutil

from legal_assistant.config import Settings
from legal_assistant.runtime.admission import Admission
from legal_assistant.runtime.engines.llamacpp import LlamaCppSpec
from legal_assistant.runtime.engines.mlx import MLXSpec, batch_size
from legal_assistant.runtime.supervisor import Supervisor


def value(argv: list[str], flag: str) -> str:
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


def test_mlx_is_launched_with_continuous_batching_sized_by_the_setting(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, mlx_parallel=3)
    argv = MLXSpec().launch(str(tmp_path), "127.0.0.1", 1234, s).argv
    assert value(argv, "--decode-concurrency") == "3"
    assert value(argv, "--prompt-concurrency") == "3"
    # The flags that would turn batching off in mlx_lm.server are never passed.
    assert "--kv-bits" not in argv and "--draft-model" not in argv


def test_mlx_default_batch_follows_the_machine_and_the_inflight_cap(tmp_path: Path) -> None:
    cores = psutil.cpu_count(logical=False) or 1
    s = Settings(data_dir=tmp_path, max_inflight_per_engine=64)
    assert batch_size(s) == max(4, cores)
    assert batch_size(s.model_copy(update={"max_inflight_per_engine": 2})) == 2


def test_llama_server_is_launched_with_parallel_slots_and_continuous_batching(
    tmp_path: Path,
) -> None:
    s = Settings(data_dir=tmp_path, llamacpp_parallel=4, llamacpp_n_ctx=2048)
    argv = LlamaCppSpec().launch("/m/x.gguf", "127.0.0.1", 9001, s).argv
    assert value(argv, "--parallel") == "4"
    assert "--cont-batching" in argv and "--no-cont-batching" not in argv
    assert value(argv, "-c") == str(4 * 2048)  # 2048 tokens of context per slot


def test_admission_lets_through_what_each_engine_runs_at_once(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, llamacpp_parallel=4, mlx_parallel=6, auth_mode="accounts")
    admission = Admission.from_settings(s, Supervisor(s).parallelism)
    assert admission.limits("llamacpp:smollm2-135m") == (4, 3)
    assert admission.limits("mlx:smollm2-135m") == (6, 5)
    # A model served elsewhere (Ollama, an OpenAI endpoint): MAX_INFLIGHT_PER_ENGINE.
    assert s.max_inflight_per_engine == 8
    assert admission.limits("ollama:llama3") == (8, 7)
    # Without accounts the one local user may fill the engine.
    alone = s.model_copy(update={"auth_mode": "none"})
    assert Admission.from_settings(alone, Supervisor(alone).parallelism).limits(
        "mlx:smollm2-135m"
    ) == (6, 6)
