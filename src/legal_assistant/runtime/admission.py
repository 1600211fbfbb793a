"""Per-model admission, fair across users.

An engine answers at most `capacity(model)` requests at once (its real parallelism: the
llama-server slots, the MLX batch size); more would only queue inside the engine, in an
order we do not choose. So the extra requests wait here, one queue per user, and a freed
slot goes to the next user in turn (round-robin), never to a user who already runs
`per_user` requests on that engine. One user's burst of eight questions, or a long fiche
generation, then delays a colleague's question by at most one slot's worth of waiting,
instead of by the whole burst. Beyond `max_queue` waiting requests the caller is told to
come back later (`busy`, HTTP 429 with Retry-After) instead of piling up unboundedly.

`fair=False` is the plain first-come-first-served gate of before (one queue, no per-user
limit), kept so `benchmarks/users.py` can compare both in one run.

This object is the only owner of the gates' state: everything below runs on the event
loop without awaiting between a decision and its bookkeeping, so a slot is counted as
taken in the same step it is granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError

# Waited seconds per admitted request: (model id, user id, seconds).
WaitObserver = Callable[[str, str, float], None]

_ALL = ""  # the one queue of the FIFO gate


@dataclass(slots=True)
class _Gate:
    capacity: int
    per_user: int
    active: int = 0
    active_by_user: dict[str, int] = field(default_factory=dict)
    # Queue key (a user id, or _ALL when FIFO) → its waiters in arrival order.
    queues: dict[str, deque[_Waiter]] = field(default_factory=dict)
    waiting: int = 0
    # The rotation: when each user last got a place (a counter, not a clock). A freed
    # place goes to the queue whose user was served least recently.
    served: dict[str, int] = field(default_factory=dict)
    turns: int = 0

    def idle(self) -> bool:
        return self.active == 0 and self.waiting == 0


@dataclass(slots=True)
class _Waiter:
    user: str
    granted: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class UserLoad:
    model: str
    user: str
    active: int
    waiting: int


def _all_but_one(capacity: int) -> int:
    return max(1, capacity - 1)


class Admission:
    def __init__(
        self,
        capacity: Callable[[str], int] | int,
        max_queue: int,
        *,
        per_user: Callable[[int], int] | int | None = None,
        fair: bool = True,
        on_wait: WaitObserver | None = None,
    ) -> None:
        """`capacity(model_id)`: requests the engine behind it runs at once. `per_user`:
        a user's share of that (a number, or a function of the capacity); None = the whole
        capacity. `on_wait` is told how long each admitted request queued."""
        self._capacity = capacity if callable(capacity) else (lambda _key, n=capacity: n)
        self._per_user = per_user
        self.max_queue = max(0, max_queue)
        self.fair = fair
        self._on_wait = on_wait
        self._gates: dict[str, _Gate] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        capacity: Callable[[str], int],
        *,
        on_wait: WaitObserver | None = None,
    ) -> Admission:
        """MAX_QUEUE_PER_ENGINE, FAIR_ADMISSION, and MAX_INFLIGHT_PER_USER (default with
        accounts: the engine's parallelism minus one, so a place stays free for someone
        else; without accounts every request is the one local user's, who gets it all)."""
        default_share = _all_but_one if settings.auth_mode == "accounts" else None
        return cls(
            capacity,
            settings.max_queue_per_engine,
            per_user=settings.max_inflight_per_user or default_share,
            fair=settings.fair_admission,
            on_wait=on_wait,
        )

    def limits(self, key: str) -> tuple[int, int]:
        """(requests the engine runs at once, of which one user may run) for `key`."""
        capacity = max(1, self._capacity(key))
        share = self._per_user(capacity) if callable(self._per_user) else self._per_user
        if share is None or not self.fair:
            return capacity, capacity
        return capacity, max(1, min(capacity, share))

    def _gate(self, key: str) -> _Gate:
        gate = self._gates.get(key)
        if gate is None:
            capacity, per_user = self.limits(key)
            gate = self._gates[key] = _Gate(capacity=capacity, per_user=per_user)
        return gate

    def tracked(self) -> int:
        """Model ids with a gate right now (only those with requests running or queued)."""
        return len(self._gates)

    def load(self, key: str) -> tuple[int, int]:
        gate = self._gates.get(key)
        return (gate.active, gate.waiting) if gate else (0, 0)

    def users(self) -> list[UserLoad]:
        """Per model and user: requests running and waiting (for /metrics)."""
        loads: list[UserLoad] = []
        for key, gate in self._gates.items():
            waiting: dict[str, int] = {}
            for queue in gate.queues.values():
                for w in queue:
                    waiting[w.user] = waiting.get(w.user, 0) + 1
            for user in sorted(set(gate.active_by_user) | set(waiting)):
                loads.append(
                    UserLoad(key, user, gate.active_by_user.get(user, 0), waiting.get(user, 0))
                )
        return loads

    @contextlib.asynccontextmanager
    async def slot(self, key: str, user: str) -> AsyncIterator[None]:
        """Hold one of the engine's places for `user` while the request runs."""
        t0 = time.monotonic()
        await self._enter(key, user)
        if self._on_wait is not None:
            self._on_wait(key, user, time.monotonic() - t0)
        try:
            yield
        finally:
            self._leave(key, user)

    async def _enter(self, key: str, user: str) -> None:
        gate = self._gate(key)
        queue_key = user if self.fair else _ALL
        if queue_key not in gate.queues and self._eligible(gate, user):
            self._take(gate, user)  # a free place, and nobody of this queue ahead
            return
        if gate.waiting >= self.max_queue:
            if gate.idle():
                del self._gates[key]
            raise LegalAssistantError(
                "busy", f"{gate.active} running and {gate.waiting} queued for {key}"
            )
        waiter = _Waiter(user, asyncio.get_running_loop().create_future())
        gate.queues.setdefault(queue_key, deque()).append(waiter)
        gate.waiting += 1
        try:
            await waiter.granted
        except BaseException:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._leave(key, user)  # granted, then cancelled before it could run
            else:
                self._withdraw(key, gate, queue_key, waiter)
            raise

    def _eligible(self, gate: _Gate, user: str) -> bool:
        return gate.active < gate.capacity and gate.active_by_user.get(user, 0) < gate.per_user

    def _take(self, gate: _Gate, user: str) -> None:
        gate.active += 1
        gate.active_by_user[user] = gate.active_by_user.get(user, 0) + 1
        gate.turns += 1
        gate.served[user] = gate.turns

    def _leave(self, key: str, user: str) -> None:
        gate = self._gates[key]
        gate.active -= 1
        left = gate.active_by_user[user] - 1
        if left:
            gate.active_by_user[user] = left
        else:
            del gate.active_by_user[user]
            if user not in gate.queues:
                del gate.served[user]  # gone: a user who comes back is not behind anyone
        self._dispatch(gate)
        if gate.idle() and self._gates.get(key) is gate:
            # One gate per model id ever seen would grow without bound.
            del self._gates[key]

    def _withdraw(self, key: str, gate: _Gate, queue_key: str, waiter: _Waiter) -> None:
        queue = gate.queues.get(queue_key)
        if queue is not None and waiter in queue:  # else already dropped by _dispatch
            queue.remove(waiter)
            gate.waiting -= 1
            if not queue:
                del gate.queues[queue_key]
        if gate.idle() and self._gates.get(key) is gate:
            del self._gates[key]

    def _dispatch(self, gate: _Gate) -> None:
        """Grant free places, each to the first waiter of the queue whose user was served
        least recently among those who may run one more (round-robin between users)."""
        while gate.active < gate.capacity:
            eligible = [
                (gate.served.get(q[0].user, 0), k)
                for k, q in gate.queues.items()
                if self._eligible(gate, q[0].user)
            ]
            if not eligible:
                return  # everyone waiting is at their per-user limit
            queue_key = min(eligible)[1]
            queue = gate.queues[queue_key]
            waiter = queue.popleft()
            gate.waiting -= 1
            if not queue:
                del gate.queues[queue_key]
            if waiter.granted.done():
                continue  # cancelled, its task not resumed yet: it has nothing to withdraw
            self._take(gate, waiter.user)
            waiter.granted.set_result(None)
