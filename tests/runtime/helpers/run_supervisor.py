"""A stand-in backend for the orphan tests: start one engine through a Supervisor, print
its pid, then wait to be killed.

    python run_supervisor.py DATA_DIR HF_HOME MODEL_ID -- ENGINE_COMMAND...

Prints `engine-pid <pid>` (flushed) once the engine is ready.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from legal_assistant.config import Settings
from legal_assistant.runtime.supervisor import Supervisor


async def main(argv: list[str]) -> None:
    sep = argv.index("--")
    data_dir, hf_home, model = argv[:sep]
    command = argv[sep + 1 :]
    settings = Settings(
        data_dir=Path(data_dir),
        hf_home=Path(hf_home),
        mlx_command=command,
        load_timeout_s=10.0,
        stop_grace_s=1.0,
    )
    supervisor = Supervisor(settings)
    engine = await supervisor.ensure_ready(model)
    print(f"engine-pid {engine.pid}", flush=True)
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
