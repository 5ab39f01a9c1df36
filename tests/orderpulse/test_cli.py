"""orderpulse/cli.py: input errors end with exit code 2 and one readable line, never a traceback."""

from __future__ import annotations

import pandas as pd
import pytest

from orderpulse.cli import main


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_help_lists_the_command_groups(capsys):
    code, out, _ = _run(capsys, ["--help"])
    assert code == 0
    for group in ("data", "features"):
        assert group in out


def test_missing_input_file_exits_2_with_one_line(capsys, tmp_path):
    code, out, err = _run(
        capsys,
        [
            "features",
            "build",
            "forecast",
            "--series",
            str(tmp_path / "nope.csv"),
            "--out",
            str(tmp_path / "f.parquet"),
        ],
    )
    assert code == 2
    assert out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "no such file" in lines[0] and "nope.csv" in lines[0]


def test_invalid_table_exits_2_naming_the_problem(capsys, tmp_path):
    path = tmp_path / "series.csv"
    pd.DataFrame({"series_id": ["a"], "ds": ["not a date"], "y": [1]}).to_csv(path, index=False)
    code, _, err = _run(
        capsys, ["features", "build", "forecast", "--series", str(path), "--out", str(tmp_path / "f.parquet")]
    )
    assert code == 2
    assert "series.ds: unparseable date/time" in err
    assert "Traceback" not in err


def test_usage_error_exits_2(capsys):
    code, _, err = _run(capsys, ["features", "build", "forecast", "--horizon", "0"])
    assert code == 2
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold-policy", "top5"], "threshold policy must be 'f1'"),
        (["--threshold-policy", "f1", "--flag-budget", "0.05"], "not --threshold-policy and --flag-budget"),
    ],
)
def test_train_anomaly_refuses_a_bad_threshold_policy_with_one_line(capsys, tmp_path, extra, message):
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,created_at,sku,quantity,unit_price\n")
    code, out, err = _run(
        capsys, ["train", "anomaly", "--orders", str(orders), "--labels", str(orders), *extra]
    )
    assert code == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0]


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith(("error:", "internal error:"))]


def test_a_file_that_cannot_be_decoded_exits_2_naming_the_file(capsys, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"series_id,ds,y\n\xff\xfe,2015-01-01,1\n")
    code, out, err = _run(
        capsys, ["features", "build", "forecast", "--series", str(path), "--out", str(tmp_path / "f.parquet")]
    )
    assert code == 2 and out == ""
    (line,) = _error_lines(err)
    assert str(path) in line and "UnicodeDecodeError" in line
    assert "Traceback" not in err


def test_scoring_with_an_unknown_registered_model_exits_2_with_one_line(capsys, tmp_path, isolated_mlflow):
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,created_at,customer_id,sku,quantity,unit_price\n1,2011-07-01,c,s,1,1.0\n")
    argv = ["score", "--model", "models:/unknown@champion", "--orders", str(orders)]
    argv += ["--from", "2011-07-01", "--to", "2011-08-01", "--out", str(tmp_path / "scores.csv")]
    code, out, err = _run(capsys, argv)
    assert code == 2 and out == ""
    (line,) = _error_lines(err)
    assert "unknown" in line and "not found" in line
    assert "Traceback" not in err


def test_an_internal_error_exits_1_with_one_line_and_the_traceback_only_with_debug(capsys, monkeypatch):
    import serving.cli

    def broken() -> str:
        raise RuntimeError("the key generator broke")

    monkeypatch.setattr(serving.cli, "generate_api_key", broken)
    code, out, err = _run(capsys, ["keys", "new"])
    assert code == 1 and out == ""
    (line,) = _error_lines(err)
    assert "RuntimeError: the key generator broke" in line and "--debug" in line
    assert "Traceback" not in err
    code, _, err = _run(capsys, ["--debug", "keys", "new"])
    assert code == 1
    assert "Traceback (most recent call last)" in err and "the key generator broke" in err
