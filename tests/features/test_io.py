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
    with pytest.raises(
        DataValidationError, match=r"cannot tell the format.*save a spreadsheet.*as CSV UTF-8.*\.parquet"
    ):
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


def test_a_dataset_path_refuses_a_directory_with_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds other files"):
        write_frame(pd.DataFrame({"a": [1]}), tmp_path)
    assert (tmp_path / "notes.txt").exists()


def test_write_frame_picks_the_format_from_the_path(tmp_path, frame):
    assert write_frame(frame, tmp_path / "f.parquet").read_bytes()[:4] == b"PAR1"
    write_frame(frame, tmp_path / "f.tsv")
    assert (tmp_path / "f.tsv").read_text().splitlines()[0] == "series_id\tds\ty"
    write_frame(frame, tmp_path / "f.csv.gz")
    assert read_frame(tmp_path / "f.csv.gz")["series_id"].tolist() == ["007", "008"]
    out = write_frame(frame, tmp_path / "dataset")
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]
    pd.testing.assert_frame_equal(read_frame(out), frame)


def test_write_frame_refuses_an_unknown_extension_naming_the_fix(tmp_path, frame):
    with pytest.raises(ValueError, match=r"f\.xlsx.*unknown extension.*\.parquet"):
        write_frame(frame, tmp_path / "f.xlsx")
    assert not (tmp_path / "f.xlsx").exists()


def test_a_glob_may_match_dataset_directories(tmp_path, frame):
    write_frame(frame.iloc[:1], tmp_path / "day1")
    write_frame(frame.iloc[1:], tmp_path / "day2")
    assert read_frame(str(tmp_path / "day*"))["series_id"].tolist() == ["007", "008"]
