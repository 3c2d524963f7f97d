"""Argument checks shared by the whole package: one message format for bad counts and sizes."""

from __future__ import annotations

#: Larger learning rates are refused as typos (AdamW diverges far below this): ``TrainConfig`` and every ``--lr``.
MAX_LR = 1.0


def check_int(name: str, value: object, low: int = 1, high: int | None = None, *, allow_none: bool = False) -> int:
    """Return ``value`` if it is a Python int (not a bool) in ``[low, high]``, else raise.

    Args:
        name: the argument's name, as the caller spells it (it leads the message).
        value: the value to check.
        low: the smallest value allowed.
        high: the largest value allowed (None: no upper bound).
        allow_none: whether None passes (returned as None, meaning "the default").

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: ``"{name}={value!r} must be [None or ]an int in [low, high]"`` (or ``>= low``).
    """
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}={value!r} must be {'None or ' if allow_none else ''}an int {bounds}")
    return value
