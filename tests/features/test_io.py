"""features/io.py: formats by extension, directories and globs, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import DataValidationError
from features.io import load_table, read_frame, write_frame


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"series_id": ["007", "008"], "ds": ["2024-01-01", "2024-01-02"], "y": [1.0, 2.0]})


def test_csv_keeps_leading_zeros_of_ids(tmp_path, frame):
    write_frame(frame, tmp_path / "s.csv")
    assert read_frame(tmp_path / "s.csv")["series_id"].tolist() == ["007", "008"]


def test_parquet_directory_and_glob_are_concatenated(tmp_path, frame):
    write_frame(frame.iloc[:1], tmp_path / "parts" / "a.parquet")
    write_frame(frame.iloc[1:], tmp_path / "parts" / "b.parquet")
    assert len(read_frame(tmp_path / "parts")) == 2
    assert len(read_frame(str(tmp_path / "parts" / "*.parquet"))) == 2


def test_unknown_extension_and_missing_file_are_clear(tmp_path):
    (tmp_path / "s.xlsx").write_text("x")
    with pytest.raises(DataValidationError, match=r"cannot tell the format.*\.parquet"):
        read_frame(tmp_path / "s.xlsx")
    with pytest.raises(DataValidationError, match="no such file"):
        read_frame(tmp_path / "nope.csv", "series")
    with pytest.raises(DataValidationError, match="glob matched no file"):
        read_frame(str(tmp_path / "*.parquet"))


def test_load_table_validates(tmp_path, frame):
    write_frame(frame, tmp_path / "s.parquet")
    df, report = load_table(tmp_path / "s.parquet", "series")
    assert report.rows_out == 2
    assert df["ds"].dtype == "datetime64[ns]"
