"""What the subcommands share: argument types (argparse ``type=`` callables) and the training commands' run flags."""

from __future__ import annotations

import argparse
import math


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
