"""The fast path for MLX on Linux: an optimized BLAS preloaded into the engine, and the
bundled model's float32 variant converted beside the 4-bit one (real conversion, real
`mlx_lm.server`, the machine's real OpenBLAS)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from legal_assistant.config import Settings
from legal_assistant.runtime import blas, bundled
from legal_assistant.runtime.bundled import (
    bundled_gguf_path,
    bundled_model_dir,
    convert_gguf,
    ensure_bundled_model,
)
from legal_assistant.runtime.supervisor import Supervisor

BUNDLED = "mlx:smollm2-135m"
DEBIAN_OPENBLAS = Path(f"/usr/lib/{blas.multiarch_triplet()}/openblas-pthread/libblas.so.3")


async def chat(base_url: str, model: str, prompt: str) -> str:
    async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
        resp = await client.post(
            f"{base_url}/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 12,
                "temperature": 0.0,
            },
        )
        resp.raise_for_status()
        return str(resp.json()["choices"][0]["message"]["content"])


def maps_blas(proc: psutil.Process) -> bool:
    # (numpy's own renamed OpenBLAS is mapped in every engine: match the system one.)
    return any(m.path == str(DEBIAN_OPENBLAS.resolve()) for m in proc.memory_maps())


def weights_dtypes(model_dir: Path) -> set[str]:
    import mlx.core as mx

    return {str(t.dtype) for t in mx.load(str(model_dir / "model.safetensors")).values()}


def test_this_machine_has_the_fast_path() -> None:
    """CI installs libopenblas0-pthread (scripts/ensure-system-deps): the search finds it
    and the bundled model runs as float32."""
    choice = blas.choose()
    assert choice.library == DEBIAN_OPENBLAS
    assert choice.variant == "float32" and choice.fast


def test_not_a_blas_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "libblas.so.3"
    text.write_text("not a library")
    libz = next(Path("/usr/lib", blas.multiarch_triplet()).glob("libz.so.1*"), None)
    assert not blas.usable(text)
    assert libz is not None and not blas.usable(libz)  # loads, but has no cblas_sgemm
    assert blas.find_fast_blas(str(text)) is None
    choice = blas.choose(str(text))
    assert choice.variant == "4bit" and "not a usable BLAS" in choice.reason
    assert blas.choose("off").variant == "4bit"


def test_without_a_fast_blas_the_reason_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stand-in for a machine without OpenBLAS: the search finds no candidate."""
    monkeypatch.setattr(blas, "candidates", lambda: [Path("/nonexistent/libblas.so.3")])
    choice = blas.choose("auto")
    assert choice.library is None and choice.variant == "4bit"
    assert "libopenblas0-pthread" in choice.reason


def test_float32_converts_beside_the_4bit_one(models_dir: Path, bundled_model: Path) -> None:
    f32 = ensure_bundled_model(models_dir, "float32")
    assert f32 == bundled_model_dir(models_dir, "float32") != bundled_model
    assert (bundled_model / "config.json").is_file()  # the 4-bit one stays
    config = json.loads((f32 / "config.json").read_text())
    assert "quantization" not in config
    assert weights_dtypes(f32) == {"mlx.core.float32"}
    assert "mlx.core.uint32" in weights_dtypes(bundled_model)  # packed 4-bit weights
    assert {p.name for p in f32.iterdir()} == {p.name for p in bundled_model.iterdir()}


def test_exception_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weights file half written, then a failure: no target, no temp dir."""
    import mlx.core as mx

    def half_then_fail(path: str, arrays: dict[str, object], **kw: object) -> None:
        Path(path).write_bytes(b"\0" * 1_000_000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mx, "save_safetensors", half_then_fail)
    target = tmp_path / "m" / bundled_model_dir(None, "float32").name
    with pytest.raises(OSError, match="No space"):
        convert_gguf(bundled_gguf_path(), target, variant="float32")
    assert os.listdir(tmp_path / "m") == []


KILLABLE = """
import sys
from pathlib import Path
from legal_assistant.runtime import bundled

def stall(meta, out):
    # The weights are written; the tokenizer is not: the middle of the conversion.
    print("weights-written", flush=True)
    sys.stdin.read()

bundled._write_tokenizer = stall
bundled.convert_gguf(bundled.bundled_gguf_path(), Path(sys.argv[1]), variant="float32")
"""


def test_killed_conversion_leaves_nothing_and_is_redone(tmp_path: Path) -> None:
    """SIGKILL mid-conversion (no cleanup can run): the model does not exist, and the next
    conversion sweeps the dead converter's temp dir and succeeds."""
    models = tmp_path / "models"
    target = bundled_model_dir(models, "float32")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "weights-written"
        leftovers = list(models.glob(f".{target.name}.*"))
        assert len(leftovers) == 1 and (leftovers[0] / "model.safetensors").stat().st_size
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not target.exists()
    assert not bundled.is_converted(models, "float32")

    again = ensure_bundled_model(models, "float32")
    assert again == target and (target / "tokenizer.json").is_file()
    assert sorted(p.name for p in models.iterdir()) == [target.name]


async def test_engine_runs_float32_with_openblas_preloaded_and_answers_paris(
    settings: Settings,
    bundled_model: Path,
    models_dir: Path,
    make_sup: Callable[[Settings], Supervisor],
) -> None:
    sup = make_sup(settings)
    engine = await sup.ensure_ready(BUNDLED)
    assert engine.pid is not None and engine.served_model is not None
    proc = psutil.Process(engine.pid)
    argv = proc.cmdline()
    assert argv[argv.index("--model") + 1] == str(bundled_model_dir(models_dir, "float32"))
    assert proc.environ().get("LD_PRELOAD") == str(DEBIAN_OPENBLAS)
    # The dynamic linker really took it: the engine has that library mapped.
    assert maps_blas(proc)
    answer = await chat(engine.base_url, engine.served_model, "What is the capital of France?")
    assert "Paris" in answer
    # The backend itself keeps its own libraries.
    assert "LD_PRELOAD" not in os.environ


async def test_blas_off_runs_the_4bit_model_without_preload(
    settings: Settings, bundled_model: Path, make_sup: Callable[[Settings], Supervisor]
) -> None:
    sup = make_sup(settings.model_copy(update={"mlx_blas": "off"}))
    engine = await sup.ensure_ready(BUNDLED)
    assert engine.pid is not None
    proc = psutil.Process(engine.pid)
    argv = proc.cmdline()
    assert argv[argv.index("--model") + 1] == str(bundled_model)
    assert "LD_PRELOAD" not in proc.environ()
    assert not maps_blas(proc)
