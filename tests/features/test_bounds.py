"""features/bounds.py: the documented input range, checked before any conversion could change a value."""

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from features.bounds import (
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    number_problem,
    out_of_bounds_rows,
    text_problem,
    timestamp_problem,
)


def test_timestamps_inside_the_range_pass_and_outside_are_named():
    assert timestamp_problem(MIN_TIMESTAMP) is None and timestamp_problem(MAX_TIMESTAMP) is None
    assert "0016-11-14T08:29:36 is outside the accepted range 1900-01-01 .. 2200-12-31" in timestamp_problem(
        datetime(16, 11, 14, 8, 29, 36)
    )
    assert timestamp_problem(MIN_TIMESTAMP - timedelta(microseconds=1)) is not None


def test_an_offset_near_year_9999_is_refused_without_overflowing():
    late = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert "outside the accepted range" in timestamp_problem(late)
    # an offset that moves a bound across it is judged in UTC
    assert timestamp_problem(datetime(2200, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))) is not None
    assert timestamp_problem(datetime(1900, 1, 1, 0, 30, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [("", "is empty"), ("a" * 129, "has 129 characters"), ("A\x00B", "U+0000 at position 1")],
)
def test_text_problems_name_what_is_wrong(value, problem):
    assert problem in text_problem(value)


def test_numbers_must_be_finite_non_bool_and_within_bounds():
    assert number_problem(2.5, 0, 10) is None
    assert "not a number" in number_problem(False, 0, 10)
    assert "not finite" in number_problem(float("inf"), 0, 10)
    assert "outside [0, 10]" in number_problem(11, 0, 10)


def test_out_of_bounds_rows_marks_each_bad_row_and_counts_per_column():
    frame = pd.DataFrame(
        {
            "t": [datetime(2011, 1, 1), datetime(16, 1, 1), "9999-12-31 00:00:00", None],
            "id": ["a", "b\x00", "c", "d"],
            "q": [1.0, 2.0, 5e-324, np.nan],
        }
    )
    bad, counts = out_of_bounds_rows(frame, timestamps=("t",), ids=("id",), numbers={"q": (0.001, 10)})
    assert bad.tolist() == [False, True, True, True]
    assert counts == {"t": 2, "id": 1, "q": 2}
