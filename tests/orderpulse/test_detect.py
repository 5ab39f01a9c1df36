"""orderpulse/commands/detect.py and orderpulse/jobs/volume.py: ``orderpulse detect volume`` reads and validates
the files, writes the verdict columns (and plots) and one JSON line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orderpulse.cli import main
from training.volume.detector import VERDICT_COLUMNS


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _write_series(path, days=3):
    ds = pd.date_range("2024-01-01", periods=days * 96, freq="15min")
    y = np.random.default_rng(0).poisson(50, len(ds)).astype(float)
    y[-20] = 400  # one surge after the warm-up
    pd.DataFrame({"series_id": "web", "ds": ds, "y": y}).to_csv(path, index=False)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_detect_volume_writes_one_row_per_point_after_warmup_and_a_json_summary(capsys, tmp_path, suffix):
    _write_series(tmp_path / "s.csv")
    cov = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=3, freq="D"), "promo": 0})
    cov.to_csv(tmp_path / "c.csv", index=False)
    out = tmp_path / f"v.{suffix}"
    argv = ["detect", "volume", "--series", str(tmp_path / "s.csv"), "--covariates", str(tmp_path / "c.csv")]
    code, stdout, _ = _run(capsys, [*argv, "--freq", "15min", "--warmup", "2d", "--out", str(out)])
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert (summary["points"], summary["series"], summary["alerts"]) == (96, 1, 1)
    assert summary["drivers"] == ["promo_flag"]
    frame = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
    assert tuple(frame.columns) == VERDICT_COLUMNS
    assert len(frame) == 96
    assert frame.loc[frame["y"] == 400, "reason"].iloc[0].startswith("400 orders in 15 min, expected ")


def test_detect_volume_plots_the_series_with_alerts(capsys, tmp_path):
    _write_series(tmp_path / "s.csv")
    argv = ["detect", "volume", "--series", str(tmp_path / "s.csv"), "--freq", "15min", "--warmup", "2d"]
    code, stdout, _ = _run(
        capsys, [*argv, "--out", str(tmp_path / "v.csv"), "--plots", str(tmp_path / "plots")]
    )
    assert code == 0
    assert json.loads(stdout.strip().splitlines()[-1])["plots"] == [str(tmp_path / "plots" / "web.png")]
    assert (tmp_path / "plots" / "web.png").read_bytes()[:4] == b"\x89PNG"


def test_detect_volume_refuses_an_unknown_frequency_with_one_line(capsys, tmp_path):
    _write_series(tmp_path / "s.csv")
    argv = [
        "detect",
        "volume",
        "--series",
        str(tmp_path / "s.csv"),
        "--freq",
        "7min",
        "--out",
        str(tmp_path / "v.csv"),
    ]
    code, stdout, err = _run(capsys, argv)
    assert code == 2 and stdout == ""
    assert "Unsupported frequency '7min'" in err and "Traceback" not in err


def test_detect_volume_refuses_an_output_that_is_neither_csv_nor_parquet(capsys, tmp_path):
    _write_series(tmp_path / "s.csv")
    argv = ["detect", "volume", "--series", str(tmp_path / "s.csv"), "--out", str(tmp_path / "v.xlsx")]
    code, _, err = _run(capsys, argv)
    assert code == 2 and "--out must end in .csv or .parquet" in err


def test_bad_rows_are_refused_before_anything_is_written(capsys, tmp_path):
    _write_series(tmp_path / "s.csv")
    frame = pd.read_csv(tmp_path / "s.csv")
    frame.loc[3, "y"] = -5
    frame.to_csv(tmp_path / "bad.csv", index=False)
    argv = ["detect", "volume", "--series", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "v.csv")]
    code, stdout, err = _run(capsys, argv)
    assert code == 2 and stdout == "" and "series" in err and "y" in err
    assert not (tmp_path / "v.csv").exists()


def test_a_frequency_finer_than_the_data_is_refused_naming_the_data_frequency(capsys, tmp_path):
    _write_series(tmp_path / "s.csv")  # 15-minute points
    argv = ["detect", "volume", "--series", str(tmp_path / "s.csv"), "--freq", "5min"]
    code, stdout, err = _run(capsys, [*argv, "--out", str(tmp_path / "v.csv")])
    assert code == 2 and stdout == "" and "Traceback" not in err
    assert "multiple of 15min apart: 2 of every 3 steps would have no row" in " ".join(err.split())
    assert "--freq 15min" in err and not (tmp_path / "v.csv").exists()


def test_steps_without_a_row_are_counted_not_judged(capsys, tmp_path):
    _write_series(tmp_path / "s.csv")
    frame = pd.read_csv(tmp_path / "s.csv")
    frame.drop(index=range(250, 260)).to_csv(tmp_path / "gaps.csv", index=False)  # 10 steps after the warm-up
    argv = ["detect", "volume", "--series", str(tmp_path / "gaps.csv"), "--freq", "15min", "--warmup", "2d"]
    code, stdout, err = _run(capsys, [*argv, "--out", str(tmp_path / "v.csv")])
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert (summary["points"], summary["missing_steps"], summary["series_with_missing_steps"]) == (86, 10, 1)
    assert "10 steps of 15min in 1 series have no row and are not judged" in " ".join(err.split())


def test_a_warmup_longer_than_every_series_is_refused_with_the_fix(capsys, tmp_path):
    _write_series(tmp_path / "s.csv", days=1)
    argv = ["detect", "volume", "--series", str(tmp_path / "s.csv"), "--freq", "15min", "--warmup", "8d"]
    code, stdout, err = _run(capsys, [*argv, "--out", str(tmp_path / "v.csv")])
    assert code == 2 and stdout == "" and "Traceback" not in err
    text = " ".join(err.split())
    assert (
        "every series ends inside its warm-up (8d from its first point; the longest spans 0 days 23:45:00)"
        in text
    )
    assert "Fix: pass a shorter --warmup" in text and not (tmp_path / "v.csv").exists()


def test_a_negative_warmup_is_refused(capsys, tmp_path):
    _write_series(tmp_path / "s.csv")
    argv = ["detect", "volume", "--series", str(tmp_path / "s.csv"), "--freq", "15min", "--warmup=-1d"]
    code, _, err = _run(capsys, [*argv, "--out", str(tmp_path / "v.csv")])
    assert code == 2 and "warmup must be a duration >= 0" in err
