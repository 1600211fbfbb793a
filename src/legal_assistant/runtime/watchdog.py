"""Die-with-parent where the kernel cannot do it (macOS has no PR_SET_PDEATHSIG).

Usage: python -m legal_assistant.runtime.watchdog PARENT_PID -- CMD ARGS...
Runs CMD in this process group, exits with its code, and kills the group as soon as
PARENT_PID is gone — so an engine never outlives a crashed backend.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    parent = int(argv[0])
    cmd = argv[argv.index("--") + 1 :]
    child = subprocess.Popen(cmd)

    def forward(sig: int, _frame: object) -> None:
        child.send_signal(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        code = child.poll()
        if code is not None:
            return code if code >= 0 else 128 - code
        if os.getppid() != parent:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
