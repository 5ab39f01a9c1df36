"""features/dask/reading.py: lazy reading of the files features.io discovers."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("distributed")

from features.dask.reading import read_table_lazy  # noqa: E402
from features.errors import DataValidationError  # noqa: E402
from features.io import read_frame, write_frame  # noqa: E402


def test_reading_a_missing_path_names_the_path(tmp_path):
    with pytest.raises(DataValidationError, match=r"cannot read .*nothing-here.*: no such file"):
        read_table_lazy(tmp_path / "nothing-here.parquet", "series")


def test_lazy_reading_finds_the_same_files_and_ids_as_read_frame(tmp_path):
    frame = pd.DataFrame({"series_id": ["007", "010"], "sku": ["01", "02"], "y": [1.0, 2.0]})
    write_frame(frame.iloc[:1], tmp_path / "parts" / "a.csv")
    write_frame(frame.iloc[1:], tmp_path / "parts" / "b.csv")
    lazy = read_table_lazy(str(tmp_path / "parts" / "*.csv")).compute().reset_index(drop=True)
    local = read_frame(str(tmp_path / "parts" / "*.csv"))
    assert lazy["series_id"].tolist() == ["007", "010"]
    assert lazy["sku"].tolist() == ["01", "02"]
    pd.testing.assert_frame_equal(lazy, local, check_dtype=False)
