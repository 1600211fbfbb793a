"""First use of a Hub model, end to end: the backend downloads `mlx:<org>/<repo>` itself
(progress events), then starts the real mlx_lm.server on the local snapshot, which
answers. The Hub is unreachable from these machines: tests/fakes/fake_hub.py stands in
for it (HF_ENDPOINT), serving the bundled model's converted files as a repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_harness import load_fake
from legal_assistant.chat.status import StatusFormatter
from legal_assistant.config import Settings
from legal_assistant.runtime.events import EngineEvent
from legal_assistant.runtime.state import EngineState
from legal_assistant.runtime.supervisor import Supervisor


async def test_hub_model_downloads_with_progress_then_serves(
    settings: Settings, bundled_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {p.name: p.read_bytes() for p in bundled_model.iterdir() if p.is_file()}
    repo = "test-org/smollm2-135m-mlx"
    with load_fake("fake_hub").FakeHub({repo: files}) as hub:
        # Throttled so the download lasts long enough to report progress several times.
        hub.throttle_bytes_per_s = 60 * 1024 * 1024
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        events: list[EngineEvent] = []
        sup = Supervisor(settings)
        try:
            seen_in_status: list[float] = []

            def on_event(ev: EngineEvent) -> None:
                events.append(ev)
                if ev.phase == "downloading":
                    progress = sup.engines()[0].status()["progress"]
                    if progress is not None:
                        seen_in_status.append(progress)

            engine = await sup.ensure_ready(f"mlx:{repo}", on_event=on_event)
            assert seen_in_status and seen_in_status[-1] == pytest.approx(1.0)
            assert engine.state is EngineState.READY
            assert engine.served_model is not None
            assert Path(engine.served_model).is_dir()  # the local snapshot, not the repo id
            assert "snapshots" in engine.served_model
            status = engine.status()  # once ready, the download progress is cleared
            assert status["phase"] == "ready" and status["progress"] is None
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
