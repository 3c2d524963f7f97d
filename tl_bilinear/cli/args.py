"""What the subcommands share: argument types (argparse ``type=`` callables) and the training commands' run flags."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from tl_bilinear.checks import MAX_LR


def parse_count(text: str) -> int:
    """``"2M"`` -> 2_000_000, ``"500k"`` -> 500_000, ``"1e6"`` -> 1_000_000.

    Raises:
        argparse.ArgumentTypeError: for anything else.
    """
    scale = {"k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}
    s = text.strip().lower().replace("_", "")
    try:
        value = float(s[:-1]) * scale[s[-1]] if s and s[-1] in scale else float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (e.g. 2000000, 2M, 500k)") from None
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive whole number")
    return int(value)


def finite_float(text: str) -> float:
    """A finite number (``nan`` and ``inf`` are refused): the type of every float flag.

    Raises:
        argparse.ArgumentTypeError: for anything else.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def finite_in(low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[str], float]:
    """An argument type: a ``finite_float`` in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Args:
        low: the smallest value allowed (excluded with ``low_open``).
        high: the largest value allowed (default: no bound).
        low_open: exclude ``low`` itself (e.g. a learning rate must be positive).

    Returns:
        The ``type=`` callable; it raises ``argparse.ArgumentTypeError`` naming the value and the range.
    """
    if high == math.inf:
        bounds = f"{'>' if low_open else '>='} {low:g}"
    else:
        bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        value = finite_float(text)
        if value < low or (low_open and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number {bounds}")
        return value

    return parse


#: ``--lr`` of every command: (0, MAX_LR], as ``TrainConfig`` checks it.
learning_rate = finite_in(0, MAX_LR, low_open=True)
#: A fraction: [0, 1].
fraction = finite_in(0, 1)
#: A finite number >= 0 (a weight decay, a noise level, a clipping norm).
non_negative = finite_in(0)
#: A finite number > 0.
positive = finite_in(0, low_open=True)


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """Add the flags of every training command (``train``, ``anneal``) that say how a run runs.

    ``--eval-every``, ``--save-every``, ``--log-every``, ``--seed``, ``--device``,
    ``--threads`` (None when not given: the config's value stays) and ``--no-progress``.

    Args:
        p: the subcommand's parser.
    """
    p.add_argument("--eval-every", type=int)
    p.add_argument("--save-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, help="CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
