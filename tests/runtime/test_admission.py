"""Per-model admission gates (issue 11, item 14): bounded, and gone once unused."""

from __future__ import annotations

import asyncio

import pytest

from legal_assistant.errors import LegalAssistantError
from legal_assistant.runtime.admission import Admission


async def test_gates_of_unused_model_ids_do_not_accumulate() -> None:
    admission = Admission(max_active=1, max_queue=1)
    for i in range(500):  # a client cycling through model ids (typos, many models)
        async with admission.slot(f"mlx:model-{i}"):
            assert admission.load(f"mlx:model-{i}") == (1, 0)
    assert admission.load("mlx:model-0") == (0, 0)
    assert admission.tracked() == 0


async def test_queue_bound_and_a_cancelled_waiter_leaves_no_gate() -> None:
    admission = Admission(max_active=1, max_queue=1)
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.slot("m"):
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await held.wait()
    waiter = asyncio.create_task(admission.slot("m").__aenter__())
    await asyncio.sleep(0)  # one loop turn: the waiter reaches the semaphore
    assert admission.load("m") == (1, 1)
    with pytest.raises(LegalAssistantError) as info:
        async with admission.slot("m"):
            pass
    assert info.value.code == "busy"
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert admission.load("m") == (0, 0) and admission.tracked() == 0
