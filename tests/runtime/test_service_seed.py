"""The seed's `MLXServerService` facade over the supervisor (issue 11, item 12). The fake
engine stands in for mlx_lm.server; a second kind is the same fake under another prefix
(the real llama.cpp engine is tested in test_llamacpp_real.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from legal_assistant.catalog import ModelRef
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.engines.base import Progress
from legal_assistant.runtime.engines.mlx import MLXSpec
from legal_assistant.runtime.service import MLXServerService
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor

WAIT = 20.0


class OtherKindSpec(MLXSpec):
    """The fake engine under the `llamacpp:` prefix: another kind of engine, serving the
    fake model directory whatever GGUF path it is given."""

    kind = "llamacpp"
    label = "llama.cpp"

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir

    async def resolve_model(self, ref: ModelRef, settings: Settings, progress: Progress) -> str:
        return str(self.model_dir)


async def test_status_shows_the_running_mlx_server_after_a_failed_request(
    make_sup: Callable[[Settings], Supervisor],
    fake_settings: Settings,
    fake_model: Callable[..., Path],
    tmp_path: Path,
) -> None:
    sup = make_sup(fake_settings)
    service = MLXServerService(sup)
    good = f"mlx:{fake_model('good')}"
    engine = await asyncio.wait_for(service.start(good), WAIT)
    with pytest.raises(LegalAssistantError) as info:
        await service.start(f"mlx:{tmp_path / 'no-such-model'}")
    assert info.value.code == "model_not_found"

    status = service.get_status()
    assert status["running"] is True and status["model"] == good
    assert status["url"] == f"{engine.base_url}/v1" and status["pid"] == engine.pid
    assert len(status["engines"]) == 2  # the failed record is listed, not reported as current


async def test_seed_stop_stops_mlx_engines_only(
    fake_settings: Settings, fake_model: Callable[..., Path], tmp_path: Path
) -> None:
    specs = {"mlx": MLXSpec(), "llamacpp": OtherKindSpec(fake_model("o"))}
    sup = Supervisor(fake_settings, specs=specs)
    try:
        service = MLXServerService(sup)
        mlx = await asyncio.wait_for(sup.ensure_ready(f"mlx:{fake_model('m')}"), WAIT)
        other = await asyncio.wait_for(sup.ensure_ready(f"llamacpp:{tmp_path}/o.gguf"), WAIT)
        stopped = await asyncio.wait_for(service.stop(), WAIT)
        assert stopped == [mlx]
        assert mlx.state is EngineState.STOPPED
        assert other.state is EngineState.READY and other.pid is not None
        # A deliberate stop is not a crash.
        assert mlx.last_error is None
    finally:
        await sup.shutdown()
