"""Login throttling (issue #21): 10 failed logins for a user, or from an address, within
the window → 429 with Retry-After, even for the right password; after the window the
right password works. The window is crossed with an injected clock, not a sleep."""

from __future__ import annotations

import pytest
from accounts_helpers import PASSWORD, add_user, anonymous

from app_harness import RunningApp
from legal_assistant.accounts.throttle import LoginThrottle
from legal_assistant.errors import LegalAssistantError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_counts_per_user_and_per_address_within_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(window_s=60, max_failures=3, clock=clock)
    for _ in range(3):
        throttle.check("alice", "10.0.0.1")
        throttle.failed("alice", "10.0.0.1")
        clock.now += 1
    with pytest.raises(LegalAssistantError) as refused:
        throttle.check("ALICE", "10.0.0.9")  # the user is throttled from any address
    assert refused.value.http_status == 429
    assert refused.value.headers == {"Retry-After": "57"}  # failures at t, t+1, t+2; now t+3
    with pytest.raises(LegalAssistantError):
        throttle.check("bob", "10.0.0.1")  # and the address for any user
    throttle.check("bob", "10.0.0.2")
    clock.now += 57
    throttle.check("alice", "10.0.0.1")  # the window has passed


def test_a_success_clears_the_user_not_the_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(window_s=60, max_failures=2, clock=clock)
    throttle.failed("alice", "10.0.0.1")
    throttle.failed("bob", "10.0.0.1")
    throttle.succeeded("alice")
    throttle.check("alice", "10.0.0.2")
    with pytest.raises(LegalAssistantError):
        throttle.check("alice", "10.0.0.1")


def test_tracked_keys_are_bounded() -> None:
    throttle = LoginThrottle(window_s=60, max_failures=2, max_keys=10)
    for i in range(100):
        for _ in range(2):
            throttle.failed(f"user{i}", f"10.0.{i}.1")
    with pytest.raises(LegalAssistantError):
        throttle.check("user99", "x")
    throttle.check("user0", "10.0.0.1")  # forgotten: the stalest keys went first


async def test_ten_failures_then_429_then_the_right_password_after_the_window(
    app: RunningApp,
) -> None:
    await add_user(app, "alice")
    clock = Clock()
    accounts = app.state.accounts
    assert accounts is not None
    accounts.throttle = LoginThrottle(
        app.settings.login_window_s, app.settings.login_max_failures, clock=clock
    )
    async with anonymous(app) as client:

        async def login(username: str, password: str) -> tuple[int, str | None]:
            resp = await client.post(
                "/api/auth/login", json={"username": username, "password": password}
            )
            return resp.status_code, resp.headers.get("retry-after")

        for _ in range(10):
            assert (await login("alice", "not the password"))[0] == 401
        status, retry = await login("alice", PASSWORD)
        assert status == 429 and retry is not None and 0 < int(retry) <= 900
        # An unknown user is throttled the same way (no enumeration through the throttle);
        # the address has also reached its 10 failures.
        assert (await login("ghost", PASSWORD))[0] == 429
        clock.now += app.settings.login_window_s + 1
        assert (await login("alice", PASSWORD))[0] == 200
    failed = (
        await app.state.db.query(
            "SELECT * FROM audit WHERE action = 'login' AND outcome = 'failed'"
        )
    )[-1]
    assert len(failed) == 10 and {r["user"] for r in failed} == {"alice"}
