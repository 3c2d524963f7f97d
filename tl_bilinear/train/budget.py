"""Fitting a run's step count to a wall-clock budget, from the measured time per step."""

from __future__ import annotations

import time

#: With a time budget, the plan is re-checked every this many steps.
REPLAN_EVERY = 25


class TimeBudget:
    """Plans how many steps fit in ``seconds`` of wall-clock time, as a run goes.

    Steps 1 and 2 (compilation, allocator warm-up) are not timed. The first plan comes
    after warm-up's first steps (``plan_at``: the warm-up learning rates do not depend
    on the total), then one every ``REPLAN_EVERY`` steps, each from the time per step
    since the previous plan, keeping 10% of the budget in reserve.

    Args:
        seconds: the budget.
        warmup_steps: the run's warm-up length.
    """

    def __init__(self, seconds: float, warmup_steps: int):
        self.seconds = seconds
        self.start = time.perf_counter()
        self.plan_at = max(5, min(warmup_steps, 20))
        self._window: tuple[float, int] | None = None  # (time, step) the current timing window began

    def over(self) -> bool:
        """Whether the run has overrun the budget by more than a quarter (time to stop)."""
        return time.perf_counter() - self.start > 1.25 * self.seconds

    def fits(self, step: int) -> int | None:
        """After step ``step``: the total step count that fits, when a plan is due.

        Args:
            step: the step just finished.

        Returns:
            The steps that fit in the budget (at least ``step``), or None between plans.
        """
        now = time.perf_counter()
        if step == 2:
            self._window = now, step
            return None
        due = step == self.plan_at or (step > self.plan_at and step % REPLAN_EVERY == 0)
        if self._window is None or not due:
            return None
        per_step = (now - self._window[0]) / (step - self._window[1])
        self._window = now, step
        return step + int((0.9 * self.seconds - (now - self.start)) / per_step)
