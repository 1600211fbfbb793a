"""Login throttling: `LOGIN_MAX_FAILURES` failed logins for one username, or from one
address, within `LOGIN_WINDOW_S` → 429 with `Retry-After` until the oldest of those
failures leaves the window. While throttled even the right password is refused (or the
throttle would only slow an attacker down); after the window it works again.

Counted for unknown usernames too, with the same answer: the throttle tells nothing about
which accounts exist. A success clears that username's failures, not the address's (one
valid account must not reset the counter of someone guessing others' passwords).

In memory, owned by this object: a restart forgets the failures (an attacker who can
restart the backend does not need to guess passwords). Bounded: at most `max_keys`
usernames/addresses are tracked, the stalest dropped first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from legal_assistant.errors import LegalAssistantError


class LoginThrottle:
    def __init__(
        self,
        window_s: float,
        max_failures: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_failures = max_failures
        self._max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, username: str, address: str) -> None:
        """Raise `too_many_attempts` (with Retry-After) when either key is over."""
        now = self._clock()
        wait = 0.0
        for key in (f"user:{username.strip().lower()}", f"addr:{address}"):
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                wait = max(wait, times[-self.max_failures] + self.window_s - now)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise LegalAssistantError(
                "too_many_attempts",
                f"retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        for key in (f"user:{username.strip().lower()}", f"addr:{address}"):
            times = self._failures.setdefault(key, deque(maxlen=self.max_failures * 4))
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"user:{username.strip().lower()}", None)
