"""graded.validation: uniform "field: problem; hint" messages."""

import numpy as np
import pytest

from graded.validation import ValidationError, check_count


@pytest.mark.parametrize("value, out", [(0, 0), (7, 7), (np.int64(3), 3)])
def test_check_count_accepts_integers_at_or_above_the_minimum(value, out):
    got = check_count("n", value)
    assert got == out and type(got) is int


@pytest.mark.parametrize("value", [-1, 2.0, True, "3", None])
def test_check_count_refuses_everything_else(value):
    with pytest.raises(ValidationError, match=r"^n: .* is not an integer >= 0; give a count$"):
        check_count("n", value, hint="give a count")


def test_check_count_minimum():
    assert check_count("k", 1, 1) == 1
    with pytest.raises(ValidationError, match=r"^k: 0 is not an integer >= 1$"):
        check_count("k", 0, 1)
