"""The shared argument check: Python ints only, bounds inclusive, one message."""

import numpy as np
import pytest

from tl_bilinear.checks import check_int


def test_accepts_ints_in_bounds():
    assert check_int("n", 1) == 1
    assert check_int("k", 0, low=0, high=0) == 0
    assert check_int("chunk_size", None, allow_none=True) is None


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (0, {}, "n=0 must be an int >= 1"),
        (True, {}, "n=True must be an int >= 1"),
        (2.0, {}, "n=2.0 must be an int >= 1"),
        (np.int64(3), {}, "n=np.int64(3) must be an int >= 1"),
        (5, {"low": 0, "high": 4}, r"n=5 must be an int in [0, 4]"),
        (None, {}, "n=None must be an int >= 1"),
        (-1, {"low": 0, "allow_none": True}, "n=-1 must be None or an int >= 0"),
    ],
)
def test_refuses_everything_else_with_one_message(value, kwargs, message):
    with pytest.raises(ValueError) as error:
        check_int("n", value, **kwargs)
    assert str(error.value) == message
