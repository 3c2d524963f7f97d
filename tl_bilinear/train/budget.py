"""Wall-clock budgets: a job's deadline, and fitting a run's step count to its share.

Both take the clock as an argument (default ``time.perf_counter``), so the decisions they
make (steps planned, time to stop, batches that still fit) can be tested with an
injected clock instead of wall-clock bounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: With a time budget, the plan is re-checked every this many steps.
REPLAN_EVERY = 25
#: A run still going at this multiple of its budget stops like a Ctrl-C.
OVERRUN = 1.25

Clock = Callable[[], float]


class Deadline:
    """A budget of ``seconds`` from now, for a whole job or one of its phases.

    Args:
        seconds: the budget.
        clock: seconds from an arbitrary origin (``time.perf_counter``).
    """

    def __init__(self, seconds: float, clock: Clock = time.perf_counter):
        self.seconds, self.clock = seconds, clock
        self.start = clock()

    def elapsed(self) -> float:
        """Seconds since the deadline was set."""
        return self.clock() - self.start

    def remaining(self) -> float:
        """Seconds left (negative once past the deadline)."""
        return self.seconds - self.elapsed()

    def fits(self, per_item_s: float, share: float = 1.0, *, at_least: int = 1, at_most: int) -> int:
        """How many items of ``per_item_s`` seconds fit in ``share`` of the remaining time.

        Args:
            per_item_s: the measured (or estimated) seconds per item.
            share: the fraction of the remaining time they may take.
            at_least: the count returned even when nothing fits.
            at_most: the count wanted.

        Returns:
            A count in ``[min(at_least, at_most), at_most]``.
        """
        fit = int(share * max(self.remaining(), 0.0) / max(per_item_s, 1e-9))
        return min(at_most, max(at_least, fit))


class TimeBudget:
    """Plans how many steps fit in ``seconds`` of wall-clock time, as a run goes.

    Steps 1 and 2 (compilation, allocator warm-up) are not timed. The first plan comes
    after warm-up's first steps (``plan_at``: the warm-up learning rates do not depend
    on the total), then one every ``REPLAN_EVERY`` steps, each from the time per step
    since the previous plan, keeping 10% of the budget in reserve.

    Args:
        seconds: the budget.
        warmup_steps: the run's warm-up length.
        clock: seconds from an arbitrary origin (``time.perf_counter``).
    """

    def __init__(self, seconds: float, warmup_steps: int, clock: Clock = time.perf_counter):
        self.seconds, self.clock = seconds, clock
        self.start = clock()
        self.plan_at = max(5, min(warmup_steps, 20))
        self.per_step: float | None = None  # seconds per step at the last plan
        self._window: tuple[float, int] | None = None  # (time, step) the current timing window began

    def over(self) -> bool:
        """Whether the run has overrun the budget by more than a quarter (time to stop)."""
        return self.clock() - self.start > OVERRUN * self.seconds

    def remaining(self) -> float:
        """Seconds left of the budget (negative once past it)."""
        return self.seconds - (self.clock() - self.start)

    def fits(self, step: int) -> int | None:
        """After step ``step``: the total step count that fits, when a plan is due.

        Args:
            step: the step just finished.

        Returns:
            The steps that fit in the budget (at least ``step``), or None between plans.
        """
        now = self.clock()
        if step == 2:
            self._window = now, step
            return None
        due = step == self.plan_at or (step > self.plan_at and step % REPLAN_EVERY == 0)
        if self._window is None or not due:
            return None
        self.per_step = (now - self._window[0]) / (step - self._window[1])
        self._window = now, step
        return step + int((0.9 * self.seconds - (now - self.start)) / self.per_step)


def final_validation_batches(
    budget: TimeBudget | None, wanted: int, batch_s: float | None, micro_batches_per_step: int = 1
) -> int:
    """How many validation batches a run's final validation uses: all, or what fits in the time left.

    With a time budget the final validation may take what is left of it (the plan keeps
    10% in reserve), so a job's later stages keep their share. A batch costs ``batch_s``
    (measured by an earlier validation) or, before any, a third of a step's time per
    micro-batch (a forward without the backward).

    Args:
        budget: the run's time budget (None: all batches).
        wanted: the validation batches configured.
        batch_s: measured seconds per validation batch, if known.
        micro_batches_per_step: micro-batches in one timed step (gradient accumulation).

    Returns:
        A count in ``[1, wanted]``.
    """
    if budget is None or (budget.per_step is None and batch_s is None):
        return wanted
    per_batch = batch_s or budget.per_step / (3 * micro_batches_per_step)
    return Deadline(budget.remaining(), budget.clock).fits(per_batch, at_most=wanted)
