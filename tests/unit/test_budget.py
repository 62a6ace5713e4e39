"""``Budget``: so many uses per window for each key, on a real (in-memory) limits
storage, with the clock frozen so that windows and Retry-After are exact."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from myapp import create_app
from myapp.errors import TooManyRequests
from myapp.ratelimit import Budget

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # a window starts here


@pytest.fixture
def clock():
    with freeze_time(T0) as frozen:
        yield frozen


@pytest.fixture
def budget(clock) -> Budget:
    strategy = FixedWindowRateLimiter(MemoryStorage())
    return Budget(strategy, parse("3 per minute"), "test:budget", "Too many tries.")


def spent(budget: Budget, key: str, times: int) -> list[bool]:
    """For each try, whether it was allowed."""
    allowed = []
    for _ in range(times):
        try:
            budget.spend(key)
            allowed.append(True)
        except TooManyRequests:
            allowed.append(False)
    return allowed


class TestSpend:
    def test_spend_when_budget_is_used_up_refuses_that_key_only(self, budget):
        assert spent(budget, "ada", 4) == [True, True, True, False]
        assert spent(budget, "bob", 1) == [True]

    # Retry-After is the rest of the window, rounded up, and never 0 (a client told
    # 0 would try again at once).
    @pytest.mark.parametrize(("elapsed", "retry_after"), [(20.4, "40"), (59.5, "1")])
    def test_spend_when_refused_says_when_the_window_ends(
        self, budget, clock, elapsed, retry_after
    ):
        spent(budget, "ada", 3)
        clock.tick(elapsed)

        with pytest.raises(TooManyRequests) as refused:
            budget.spend("ada")

        assert refused.value.headers == {"Retry-After": retry_after}
        assert refused.value.detail == "Too many tries."

    def test_spend_when_the_window_has_passed_allows_again(self, budget, clock):
        spent(budget, "ada", 3)
        clock.tick(60)

        assert spent(budget, "ada", 1) == [True]

    def test_spend_when_limits_are_switched_off_never_refuses(self):
        off = Budget(None, parse("1 per minute"), "test:budget", "Too many tries.")

        assert spent(off, "ada", 3) == [True, True, True]


class TestRefund:
    def test_refund_when_a_use_turned_out_free_gives_back_exactly_one(self, budget):
        spent(budget, "ada", 3)

        budget.refund("ada")

        assert spent(budget, "ada", 2) == [True, False]


class TestOfApp:
    # RATELIMIT_ENABLED=False is an operator's choice (a gateway in front limits
    # instead): the budgets follow it like the per-IP limits.
    @pytest.mark.parametrize(("enabled", "allowed"), [(True, [True, False]), (False, [True, True])])
    def test_budget_when_the_apps_limits_are_on_or_off_follows_them(self, enabled, allowed):
        app = create_app(
            "testing",
            overrides={"RATELIMIT_ENABLED": enabled, "RATELIMIT_MFA_CHANGES": "1 per hour"},
        )

        with app.app_context():
            budget = Budget.of(app, "RATELIMIT_MFA_CHANGES", "Too many changes.")
            assert spent(budget, "ada", 2) == allowed
