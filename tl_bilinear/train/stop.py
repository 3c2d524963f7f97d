"""Stop means stop: Ctrl-C / SIGTERM as a request a run answers at its next safe point.

``StopRequest`` notes the first Ctrl-C or SIGTERM and puts the previous handlers back, so
a second one acts at once (Python's KeyboardInterrupt, or the default kill). The trainer
checks it after every step and between validation batches, saves its checkpoint and
returns. ``raise_on_signals`` is for phases with nothing to save (a tokenizer, an
analysis, a report): there the first signal raises ``JobStopped`` where the job is.
``StopCheck`` is the trainer's stop decision: a signal, or the time budget overrun,
agreed across ranks.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

from tl_bilinear.train import distributed
from tl_bilinear.train.budget import OVERRUN, TimeBudget

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class JobStopped(KeyboardInterrupt):
    """A Ctrl-C / SIGTERM stopped the job; the message says where and what was saved."""


def _install(handler: Any) -> dict[int, Any]:
    """Install ``handler`` for SIGINT and SIGTERM (main thread only); the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in SIGNALS}


def _restore(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


class StopRequest:
    """Within ``with StopRequest() as stop:``, a first Ctrl-C/SIGTERM sets ``stop.signum``.

    The first signal also puts the previous handler back, so a second one acts at once.
    Outside the main thread (where Python cannot handle signals) nothing is installed.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        self._previous = _install(self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        _restore(self._previous)

    def _note(self, signum: int, frame: Any) -> None:
        self.signum = signum
        previous = self._previous.get(signum)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)

    @property
    def requested(self) -> bool:
        """Whether a Ctrl-C/SIGTERM has arrived."""
        return self.signum is not None

    def describe(self) -> str:
        """The signal's name (``"SIGTERM"``), or ``"no signal"``."""
        return signal.Signals(self.signum).name if self.signum is not None else "no signal"


@contextlib.contextmanager
def raise_on_signals() -> Iterator[None]:
    """Within: the first Ctrl-C/SIGTERM raises ``JobStopped`` at once; a second one acts as before.

    Yields:
        Nothing.
    """
    previous: dict[int, Any] = {}

    def stop(signum: int, frame: Any) -> None:
        _restore(previous)
        raise JobStopped(signal.Signals(signum).name)

    previous.update(_install(stop))
    try:
        yield
    finally:
        _restore(previous)


class StopCheck:
    """The trainer's stop decision after a step: a signal, or the time budget overrun.

    Args:
        request: the run's ``StopRequest``.
        budget: the run's ``TimeBudget`` (None: no time budget).
        info: this process's place in the run (all ranks agree on the answer).
    """

    def __init__(self, request: StopRequest, budget: TimeBudget | None, info: distributed.DistInfo):
        self.request, self.budget, self.info = request, budget, info

    def signalled(self) -> bool:
        """Whether any rank has been sent a Ctrl-C/SIGTERM (a collective under DDP)."""
        return distributed.any_across(self.request.requested, self.info)

    def __call__(self) -> str | None:
        """Why the run should stop now: ``"signal"``, ``"time budget"``, or None to go on."""
        signalled = self.signalled()
        over = distributed.any_across(self.budget is not None and self.budget.over(), self.info)
        if signalled:
            return "signal"
        if over:
            logger.warning("over %.2gx the time budget (%.0f s): stopping", OVERRUN, self.budget.seconds)
            return "time budget"
        return None
