"""First use of a Hub model, end to end: the backend downloads `mlx:<org>/<repo>` itself
(progress events), then starts the real mlx_lm.server on the local snapshot, which
answers. The Hub is unreachable from these machines: tests/fakes/fake_hub.py stands in
for it (HF_ENDPOINT), serving the bundled model's converted files as a repo."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from legal_assistant.chat.status import StatusFormatter
from legal_assistant.config import Settings
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor


def _load_fake_hub() -> ModuleType:
    if "fake_hub" in sys.modules:
        return sys.modules["fake_hub"]
    path = Path(__file__).resolve().parents[1] / "fakes" / "fake_hub.py"
    spec = importlib.util.spec_from_file_location("fake_hub", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_hub"] = module
    spec.loader.exec_module(module)
    return module


async def test_hub_model_downloads_with_progress_then_serves(
    settings: Settings, bundled_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {p.name: p.read_bytes() for p in bundled_model.iterdir() if p.is_file()}
    repo = "test-org/smollm2-135m-mlx"
    with _load_fake_hub().FakeHub({repo: files}) as hub:
        # Throttled so the download lasts long enough to report progress several times.
        hub.throttle_bytes_per_s = 60 * 1024 * 1024
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        events: list[EngineEvent] = []
        sup = Supervisor(settings)
        try:
            engine = await sup.ensure_ready(f"mlx:{repo}", on_event=events.append)
            assert engine.state is EngineState.READY
            assert engine.served_model is not None
            assert Path(engine.served_model).is_dir()  # the local snapshot, not the repo id
            assert "snapshots" in engine.served_model
        finally:
            await sup.shutdown()

        downloading = [e for e in events if e.phase == "downloading"]
        assert len(downloading) >= 2
        fractions = [e.progress for e in downloading if e.progress is not None]
        assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
        phases = [e.phase for e in events]
        assert phases.index("downloading") < phases.index("loading") < phases.index("ready")
        # What the chat shows for it.
        fmt = StatusFormatter("fr", downloading[0].ts)
        payload = fmt(downloading[-1])
        assert payload is not None and payload["message"].startswith("⬇️ Téléchargement")
        assert payload["progress"] == pytest.approx(1.0)

        # Second use: complete in the cache → no network at all.
        hub.requests.clear()
        sup = Supervisor(settings)
        try:
            again = await sup.ensure_ready(f"mlx:{repo}")
            assert again.served_model == engine.served_model
        finally:
            await sup.shutdown()
        assert hub.requests == []
