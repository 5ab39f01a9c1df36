"""orderpulse/console.py: RichProgress renders a training job's progress on stderr; stdout stays one JSON line."""

from __future__ import annotations

import json

from orderpulse.console import RichProgress, print_json_line


def test_rich_progress_indents_lines_keeps_brackets_and_nests_tasks(capsys):
    p = RichProgress()
    p.info("backtest WAPE 0.0793 (seasonal naive 0.1756) [a, b]")
    p.warning("note: the best trial does not use weather features")
    with p.task("backtest windows", total=2) as outer:
        with p.task("LightGBM rounds, steps 1-7", total=3) as inner:
            inner.advance(3)
        outer.advance(2)
    with p.task("tuning (1 trials)", total=1) as again:  # a new display after the first one stopped
        again.advance()
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "  backtest WAPE 0.0793 (seasonal naive 0.1756) [a, b]",
        "  note: the best trial does not use weather features",
    ]


def test_print_json_line_writes_one_compact_line(capsys):
    print_json_line({"run_id": "abc", "metrics": {"wape": 0.5}})
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"run_id": "abc", "metrics": {"wape": 0.5}}
