"""training/progress.py: the Progress protocol, the logging default, the current progress and the LightGBM callback."""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np

from training import progress


def test_logging_progress_writes_lines_and_counts_task_steps(caplog):
    with caplog.at_level(logging.DEBUG, logger="training"):
        p = progress.LoggingProgress()
        p.info("backtest: 2 windows")
        p.warning("note: no weather")
        with p.task("windows", total=2) as task:
            task.advance()
            task.advance()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "backtest: 2 windows") in messages
    assert ("WARNING", "note: no weather") in messages
    assert messages[-1][0] == "DEBUG" and messages[-1][1].startswith("windows: 2 steps in ")


def test_reporting_makes_a_progress_current_and_restores_the_default(recorded_progress):
    rec = recorded_progress
    assert isinstance(progress.current(), progress.LoggingProgress)
    with progress.reporting(rec) as chosen:
        assert chosen is rec
        assert progress.current() is rec
        assert progress.resolve(None) is rec
    assert isinstance(progress.current(), progress.LoggingProgress)
    assert progress.resolve(rec) is rec


def test_lightgbm_rounds_advances_once_per_boosting_round(recorded_progress):
    rec = recorded_progress
    rng = np.random.default_rng(0)
    data = lgb.Dataset(rng.normal(size=(200, 3)), label=rng.normal(size=200))
    params = {"objective": "regression", "verbose": -1, "num_threads": 1}
    with rec.task("rounds", total=7) as task:
        lgb.train(params, data, num_boost_round=7, callbacks=[progress.lightgbm_rounds(task)])
    assert rec.tasks["rounds"] == [1] * 7 + [7]
