"""Engine specs other than MLX: command lines and error classification (vLLM from recorded
output lines: there is no GPU here, so vLLM itself never runs in CI), and the full vLLM
lifecycle with the fake engine standing in for the `vllm serve` binary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.llamacpp import LlamaCppSpec
from legal_assistant.runtime.engines.mlx import MLXSpec
from legal_assistant.runtime.engines.vllm import VLLMSpec
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

FAKE_ENGINE = Path(__file__).resolve().parents[1] / "fakes" / "fake_engine.py"


def test_vllm_command_line_carries_parallelism_and_ray(settings: Settings) -> None:
    s = settings.model_copy(
        update={
            "vllm_tensor_parallel_size": 4,
            "vllm_pipeline_parallel_size": 2,
            "vllm_gpu_memory_utilization": 0.85,
            "vllm_max_model_len": 8192,
            "vllm_distributed_executor_backend": "ray",
        }
    )
    plan = VLLMSpec().launch("org/model", "127.0.0.1", 9000, s)
    argv = plan.argv
    assert argv[:3] == ["vllm", "serve", "org/model"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert pairs == {
        "--host": "127.0.0.1",
        "--port": "9000",
        "--tensor-parallel-size": "4",
        "--pipeline-parallel-size": "2",
        "--gpu-memory-utilization": "0.85",
        "--max-model-len": "8192",
        "--distributed-executor-backend": "ray",
    }
    assert plan.served_model == "org/model"
    assert plan.env["VLLM_NO_USAGE_STATS"] == "1"


# Lines as vLLM prints them (recorded from its logs and issue reports).
VLLM_LINES = {
    "engine_crashed": "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
    "GPU 0 has a total capacity of 23.68 GiB of which 1.06 GiB is free.",
    "engine_not_installed": "RuntimeError: Failed to infer device type",
    "model_not_found": "OSError: nobody/none is not a local folder and is not a valid model "
    "identifier listed on 'https://huggingface.co/models'",
    "port_busy": "OSError: [Errno 98] error while attempting to bind on address "
    "('127.0.0.1', 8000): address already in use",
}


@pytest.mark.parametrize(("code", "line"), sorted(VLLM_LINES.items()))
def test_vllm_fatal_lines_are_classified(code: str, line: str) -> None:
    spec = VLLMSpec()
    assert spec.fatal_line(line)
    err = spec.classify(tail=["INFO starting", line], exit_code=None, fatal=line)
    assert err.code == code
    assert err.message("fr").startswith("❌") and err.log_tail


def test_vllm_oom_and_no_gpu_messages_are_specific() -> None:
    spec = VLLMSpec()
    oom = spec.classify(tail=[VLLM_LINES["engine_crashed"]], exit_code=1, fatal=None)
    assert "GPU" in oom.message("fr") and "--max-model-len" in oom.message("en")
    no_gpu = spec.classify(
        tail=["RuntimeError: No CUDA GPUs are available"], exit_code=1, fatal=None
    )
    assert "GPU" in no_gpu.message("en")


def test_llamacpp_bind_error_is_port_busy() -> None:
    spec = LlamaCppSpec()
    line = "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 1)"
    assert spec.fatal_line(line)
    assert spec.classify(tail=[line], exit_code=3, fatal=line).code == "port_busy"


async def test_llamacpp_not_installed_names_the_install_command(
    settings: Settings, tmp_path: Path
) -> None:
    sup = Supervisor(settings.model_copy(update={"engines_dir": tmp_path / "no-engines"}))
    try:
        with pytest.raises(LegalAssistantError) as err:
            await sup.ensure_ready("llamacpp:smollm2-135m")
    finally:
        await sup.shutdown()
    assert err.value.code == "engine_not_installed"
    assert "legal-assistant engines install llamacpp" in err.value.message("fr")


async def test_vllm_lifecycle_with_the_fake_engine(
    fake_settings: Settings, fake_model: Callable[..., Path]
) -> None:
    """The fake engine stands in for `vllm serve` (positional model, same flags)."""
    model = fake_model("vllm-model", tokens=4)
    settings = fake_settings.model_copy(update={"vllm_command": [sys.executable, str(FAKE_ENGINE)]})
    sup = Supervisor(settings)
    try:
        engine = await sup.ensure_ready(f"vllm:{model}")
        assert engine.state is EngineState.READY and engine.kind == "vllm"
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            resp = await client.post(
                f"{engine.base_url}/v1/chat/completions",
                json={"model": engine.served_model, "messages": [{"role": "user", "content": "x"}]},
            )
        assert resp.status_code == 200
        # Another kind: an MLX engine may run beside it (swap is per kind).
        mlx = await sup.ensure_ready(f"mlx:{fake_model('mlx-model')}")
        assert engine.state is EngineState.READY and mlx.state is EngineState.READY
        await sup.stop(f"vllm:{model}")
        assert engine.state is EngineState.STOPPED
    finally:
        await sup.shutdown()


async def test_catalog_lists_llamacpp_models_and_cached_gguf_files(settings: Settings) -> None:
    from legal_assistant.api.routes.models import build_catalog

    snapshot = settings.resolved_hf_home / "hub" / "models--org--tiny-gguf" / "snapshots" / "c1"
    snapshot.mkdir(parents=True)
    gguf = snapshot / "tiny.Q4_0.gguf"
    gguf.write_bytes(b"GGUF" + bytes(100))
    sup = Supervisor(settings.model_copy(update={"ollama_url": "http://127.0.0.1:9"}))
    try:
        catalog = await build_catalog(sup.settings, sup, "en")
    finally:
        await sup.shutdown()
    by_id = {m["id"]: m for m in catalog["models"]}
    assert by_id[f"llamacpp:{gguf}"]["size_bytes"] == 104
    bundled = by_id["llamacpp:smollm2-135m"]
    assert bundled["provider"] == "llamacpp" and "engine_installed" in bundled
    assert catalog["ollama_error"] and "Ollama is not running" in catalog["ollama_error"]


def test_mlx_unsupported_architecture_is_a_model_error_not_not_installed() -> None:
    """mlx_lm's traceback for an unknown `model_type` names `mlx_lm.models.X`: that is the
    model's problem (model_unsupported), not a missing mlx-lm (issue 11, item 5)."""
    spec = MLXSpec()
    tail = [
        "INFO - Starting httpd at 127.0.0.1 on port 8080...",
        "Traceback (most recent call last):",
        "ModuleNotFoundError: No module named 'mlx_lm.models.fancy'",
        "The above exception was the direct cause of the following exception:",
        "ValueError: Model type fancy not supported.",
        "ERROR - mlx_lm.server generation thread died: Model type fancy not supported.",
    ]
    assert spec.fatal_line(tail[-1])
    assert not spec.not_installed_pattern.search(tail[2])
    err = spec.classify(tail=tail, exit_code=None, fatal=tail[-1])
    assert err.code == "model_unsupported" and "fancy" in err.detail
    # mlx-lm itself missing is still "not installed".
    missing = "Error while finding module specification for 'mlx_lm.server' "
    missing += "(ModuleNotFoundError: No module named 'mlx_lm')"
    assert spec.classify(tail=[missing], exit_code=1, fatal=missing).code == (
        "engine_not_installed"
    )


def test_classification_reads_the_decisive_lines_not_a_logged_prompt() -> None:
    """A prompt logged earlier saying "Address already in use" does not make a crash a
    port conflict: only the fatal line and the last exception line are read."""
    spec = MLXSpec()
    tail = [
        'INFO - prompt: "OSError: [Errno 98] Address already in use"',
        "Traceback (most recent call last):",
        '  File "mlx_lm/server.py", line 1, in run',
        "RuntimeError: something else broke",
    ]
    err = spec.classify(tail=tail, exit_code=1, fatal=None)
    assert err.code == "engine_crashed"


def test_mlx_engines_on_linux_do_not_jit_compile_kernels(tmp_path: Path) -> None:
    """MLX's CPU kernel compilation races between processes (a shared temp file per
    kernel); Linux engines run without it."""
    plan = MLXSpec().launch(str(tmp_path), "127.0.0.1", 1234, Settings(data_dir=tmp_path))
    if sys.platform == "linux":
        assert plan.env["MLX_DISABLE_COMPILE"] == "1"
    else:
        assert "MLX_DISABLE_COMPILE" not in plan.env
