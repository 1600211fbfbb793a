"""Per-model admission (issue 11 item 14: bounded, gone once unused; issue 21: fair across
users). Ordering, not timing: requests are tasks that hold their place until the test
releases them, and the test waits on admission's own counts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from app_harness import poll
from legal_assistant.config import Settings
from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.admission import Admission, UserLoad

M = "llamacpp:smollm2-135m"


@dataclass
class Requests:
    """Requests as tasks: each records its admission in `order`, then holds its place
    until `finish(name)`."""

    admission: Admission
    order: list[str] = field(default_factory=list)
    done: dict[str, asyncio.Event] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def send(self, name: str, user: str, key: str = M) -> None:
        self.done[name] = asyncio.Event()

        async def run() -> None:
            async with self.admission.slot(key, user):
                self.order.append(name)
                await self.done[name].wait()

        self.tasks[name] = asyncio.create_task(run(), name=name)

    async def finish(self, name: str) -> None:
        assert name in self.order, f"{name} was never admitted: {self.order}"
        self.done[name].set()
        await self.tasks[name]

    async def settled(self, running: int, waiting: int, key: str = M) -> None:
        """Wait until admission counts `running` and `waiting` requests on `key`."""
        await poll(
            lambda: self.admission.load(key) == (running, waiting),
            timeout=5,
            interval=0,  # loop turns: the tasks only need to run up to their queue
            what=f"{running} running, {waiting} waiting",
        )

    async def aclose(self) -> None:
        for ev in self.done.values():
            ev.set()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def test_a_colleague_is_admitted_before_the_fifth_request_of_a_burst() -> None:
    """User A sends 8 requests to an engine with 2 places; user B then asks once. B gets
    the next free place, not A's 3rd; with FIFO B waits behind all of A's."""
    fair = Requests(Admission(2, 64, per_user=2))
    fifo = Requests(Admission(2, 64, fair=False))
    for r in (fair, fifo):
        for i in range(1, 9):
            r.send(f"A{i}", "alice")
        await r.settled(2, 6)
        r.send("B1", "bob")
        await r.settled(2, 7)
        for i in range(1, 9):  # each request ends in turn, freeing its place
            if f"A{i}" in r.order:
                await r.finish(f"A{i}")
        await r.aclose()
    assert fair.order[:4] == ["A1", "A2", "B1", "A3"]
    assert fair.order.index("B1") < fair.order.index("A5")
    assert fifo.order == [f"A{i}" for i in range(1, 9)] + ["B1"]


async def test_the_per_user_limit_keeps_a_place_free_for_someone_else() -> None:
    r = Requests(Admission(4, 64, per_user=2))
    for i in range(1, 5):
        r.send(f"A{i}", "alice")
    await r.settled(2, 2)  # two places stay free: alice is at her limit
    assert r.order == ["A1", "A2"]
    r.send("B1", "bob")
    await r.settled(3, 2)  # bob is admitted at once, ahead of alice's queue
    assert r.order == ["A1", "A2", "B1"]
    assert UserLoad(M, "alice", 2, 2) in r.admission.users()
    assert UserLoad(M, "bob", 1, 0) in r.admission.users()
    await r.finish("A1")
    await r.settled(3, 1)
    assert r.order[-1] == "A3"
    await r.aclose()


async def test_freed_places_rotate_between_users_queues() -> None:
    r = Requests(Admission(1, 64))
    r.send("A0", "alice")
    await r.settled(1, 0)
    for i in range(1, 4):
        for user in ("alice", "bob", "carol"):
            r.send(f"{user[0].upper()}{i}", user)
    await r.settled(1, 9)
    expected = ["A0", "B1", "C1", "A1", "B2", "C2", "A2", "B3", "C3", "A3"]
    for name in expected[:-1]:
        await r.finish(name)
    assert r.order == expected  # alice just ran A0: bob and carol come first
    await r.aclose()


async def test_a_request_cancelled_while_granted_gives_its_place_back() -> None:
    r = Requests(Admission(1, 64))
    held = r.admission.slot(M, "alice")
    await held.__aenter__()
    r.send("B1", "bob")
    r.send("C1", "carol")
    await r.settled(1, 2)
    await held.__aexit__(None, None, None)  # grants B1 its place, without yielding...
    r.tasks["B1"].cancel()  # ...so B1 is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await r.tasks["B1"]
    await r.settled(1, 0)
    assert r.order == ["C1"]
    await r.aclose()
    assert r.admission.tracked() == 0


async def test_a_waiter_cancelled_as_a_place_frees_is_skipped() -> None:
    r = Requests(Admission(1, 64))
    held = r.admission.slot(M, "alice")
    await held.__aenter__()
    r.send("B1", "bob")
    r.send("C1", "carol")
    await r.settled(1, 2)
    r.tasks["B1"].cancel()  # B1's wait is cancelled, its task not resumed yet...
    await held.__aexit__(None, None, None)  # ...when the place frees: C1 gets it
    with pytest.raises(asyncio.CancelledError):
        await r.tasks["B1"]
    await r.settled(1, 0)
    assert r.order == ["C1"]
    await r.aclose()
    assert r.admission.tracked() == 0


async def test_waits_are_reported_per_user() -> None:
    waits: list[tuple[str, str]] = []
    r = Requests(Admission(1, 64, on_wait=lambda key, user, _s: waits.append((key, user))))
    r.send("A1", "alice")
    await r.settled(1, 0)
    r.send("B1", "bob")
    await r.settled(1, 1)
    assert waits == [(M, "alice")]
    await r.finish("A1")
    await r.finish("B1")
    assert waits == [(M, "alice"), (M, "bob")]


def test_default_share_is_the_engine_parallelism_minus_one() -> None:
    settings = Settings(_env_file=None, auth_mode="accounts")  # type: ignore[call-arg]
    capacities = {"llamacpp:x": 4, "mlx:y": 1}
    admission = Admission.from_settings(settings, capacities.__getitem__)
    assert admission.limits("llamacpp:x") == (4, 3)
    assert admission.limits("mlx:y") == (1, 1)
    # Without accounts, every request is the one local user's: the whole engine is theirs.
    alone = Admission.from_settings(
        settings.model_copy(update={"auth_mode": "none"}), capacities.__getitem__
    )
    assert alone.limits("llamacpp:x") == (4, 4)
    fixed = Admission.from_settings(
        settings.model_copy(update={"max_inflight_per_user": 2}), capacities.__getitem__
    )
    assert fixed.limits("llamacpp:x") == (4, 2)
    fifo = Admission.from_settings(
        settings.model_copy(update={"fair_admission": False}), capacities.__getitem__
    )
    assert fifo.limits("llamacpp:x") == (4, 4)


async def test_gates_of_unused_model_ids_do_not_accumulate() -> None:
    admission = Admission(1, 1)
    for i in range(500):  # a client cycling through model ids (typos, many models)
        async with admission.slot(f"mlx:model-{i}", "local"):
            assert admission.load(f"mlx:model-{i}") == (1, 0)
    assert admission.load("mlx:model-0") == (0, 0)
    assert admission.tracked() == 0


async def test_queue_bound_and_a_cancelled_waiter_leaves_no_gate() -> None:
    r = Requests(Admission(1, 1))
    r.send("A1", "alice")
    await r.settled(1, 0)
    r.send("A2", "alice")
    await r.settled(1, 1)
    with pytest.raises(LegalAssistantError) as info:
        async with r.admission.slot(M, "bob"):
            pass
    assert info.value.code == "busy"
    r.tasks["A2"].cancel()
    with pytest.raises(asyncio.CancelledError):
        await r.tasks["A2"]
    await r.finish("A1")
    assert r.admission.load(M) == (0, 0) and r.admission.tracked() == 0
