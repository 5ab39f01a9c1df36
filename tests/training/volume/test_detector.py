"""training/volume/detector.py: causality, alerts and reasons, debounce, frequencies, warm-up, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.calendar import step_length
from training.volume.detector import VERDICT_COLUMNS, VolumeDetector


def _series(
    freq: str = "5min",
    days: float = 10,
    rate: float = 60.0,
    seed: int = 0,
    sid: str = "web",
    start="2024-01-01",
):
    """Poisson counts with a daily rhythm (low at night, high in the afternoon)."""
    step = step_length(freq)
    ds = pd.date_range(start, periods=int(pd.Timedelta(days=days) / step), freq=step)
    hour = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    mean = rate * (1.0 + 0.6 * np.sin((hour - 9) / 24 * 2 * np.pi))
    y = np.random.default_rng(seed).poisson(mean).astype(float)
    return pd.DataFrame({"series_id": sid, "ds": ds, "y": y})


def _alerts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Rows that open an alert: flagged, and the previous row of the series was not."""
    prev = verdicts.groupby("series_id")["flagged"].shift(1, fill_value=False)
    return verdicts[verdicts["flagged"] & ~prev]


def test_output_has_exactly_the_documented_columns_and_no_row_inside_warmup():
    v = VolumeDetector(freq="5min", warmup="3d").detect(_series(days=5))
    assert tuple(v.columns) == VERDICT_COLUMNS
    assert v["ds"].min() == pd.Timestamp("2024-01-04")
    assert len(v) == 2 * 288
    assert ((v["lo"] <= v["expected"]) & (v["expected"] <= v["hi"])).all()
    assert v["score"].between(0, 1).all()


def test_cutting_a_series_anywhere_gives_exactly_the_same_verdicts_up_to_the_cut():
    s = _series(days=6, seed=3)
    s.loc[1500:1510, "y"] *= 4  # an event, so flags and event state are exercised too
    full = VolumeDetector(freq="5min", warmup="2d").detect(s, include_warmup=True)
    assert full["flagged"].any()
    for cut in (700, 1200, 1505, 1508, len(s) - 1):
        part = VolumeDetector(freq="5min", warmup="2d").detect(s.iloc[:cut], include_warmup=True)
        pd.testing.assert_frame_equal(part, full.iloc[:cut].reset_index(drop=True))


def test_streaming_point_by_point_continues_exactly_like_one_batch():
    s = _series(days=4, seed=4)
    s.loc[1000:1005, "y"] *= 5
    full = VolumeDetector(freq="5min", warmup="2d").detect(s, include_warmup=True)
    det = VolumeDetector(freq="5min", warmup="2d").fit(s.iloc[:990])
    streamed = [det.update("web", row.ds, row.y) for row in s.iloc[990:1100].itertuples()]
    got = pd.DataFrame(streamed)
    want = full.iloc[990:1100].reset_index(drop=True)
    np.testing.assert_allclose(got["expected"].to_numpy(float), want["expected"].to_numpy(float))
    assert got["flagged"].tolist() == want["flagged"].tolist()
    assert got["reason"].tolist() == want["reason"].tolist()
    assert sum(v["alert"] for v in streamed) == 1


def test_an_unplanned_spike_gives_one_alert_with_a_readable_reason():
    s = _series(days=9, seed=1)
    spike = (s["ds"] >= "2024-01-09 14:00") & (s["ds"] < "2024-01-09 15:00")
    s.loc[spike, "y"] = s.loc[spike, "y"] * 3
    v = VolumeDetector(freq="5min", warmup="8d").detect(s)
    alerts = _alerts(v)
    assert len(alerts) == 1
    first = alerts.iloc[0]
    assert first["ds"] == pd.Timestamp("2024-01-09 14:00")
    assert first["direction"] == "surge"
    assert first["reason"].startswith(f"{first['y']:,.0f} orders in 5 min, expected ")
    assert "(95% up to " in first["reason"] and "no known driver given" in first["reason"]
    assert first["reason"].endswith("first surge seen")
    flagged = v.index[v["flagged"]]
    assert (np.diff(flagged) == 1).all()  # one contiguous run: debounced


def test_the_second_similar_event_names_the_first():
    s = _series(days=10, seed=2)
    for day in ("2024-01-09", "2024-01-10"):
        hit = (s["ds"] >= f"{day} 14:00") & (s["ds"] < f"{day} 14:30")
        s.loc[hit, "y"] = s.loc[hit, "y"] * 3
    alerts = _alerts(VolumeDetector(freq="5min", warmup="8d").detect(s))
    assert len(alerts) == 2
    assert alerts.iloc[0]["ds"].strftime("%Y-%m-%d %H") == "2024-01-09 14"
    assert alerts.iloc[1]["reason"].endswith(f"similar to {alerts.iloc[0]['ds']:%Y-%m-%d %H:%M}")


def test_a_drop_is_flagged_as_a_drop():
    s = _series(days=9, seed=5)
    cut = (s["ds"] >= "2024-01-09 12:00") & (s["ds"] < "2024-01-09 13:00")
    s.loc[cut, "y"] = 0
    alerts = _alerts(VolumeDetector(freq="5min", warmup="8d").detect(s))
    assert alerts["direction"].tolist() == ["drop"]
    assert "(95% down to " in alerts.iloc[0]["reason"] and "-100%" in alerts.iloc[0]["reason"]


def test_a_run_of_zeros_reads_as_no_data_and_stays_one_drop_alert():
    s = _series(days=9, seed=5)
    outage = (s["ds"] >= "2024-01-09 12:00") & (s["ds"] < "2024-01-09 16:00")
    s.loc[outage, "y"] = 0
    v = VolumeDetector(freq="5min", warmup="8d").detect(s)
    alerts = _alerts(v)
    assert alerts["direction"].tolist() == ["drop"]
    change = alerts.iloc[0]["reason"].split(": ", 1)[1]
    assert change.startswith("-100%, no data: a channel or collection outage?")
    zero_flagged = v[v["flagged"] & (v["y"] == 0)]
    assert len(zero_flagged) == 48 and zero_flagged["reason"].str.contains("no data").all()


def test_a_drop_to_a_third_is_not_called_no_data():
    s = _series(days=9, seed=5)
    cut = (s["ds"] >= "2024-01-09 12:00") & (s["ds"] < "2024-01-09 13:00")
    s.loc[cut, "y"] = (s.loc[cut, "y"] / 3).round()
    v = VolumeDetector(freq="5min", warmup="8d").detect(s)
    alerts = _alerts(v)
    assert alerts["direction"].tolist() == ["drop"]
    assert not v.loc[v["flagged"], "reason"].str.contains("no data").any()


def _promo_day(planned: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    s = _series(days=10, seed=6)
    day = s["ds"].dt.normalize() == pd.Timestamp("2024-01-09")
    s.loc[day, "y"] = np.random.default_rng(7).poisson(s.loc[day, "y"] * 2.5)
    dates = pd.date_range("2024-01-01", "2024-01-10", freq="D")
    cov = pd.DataFrame({"ds": dates, "promo": (dates == "2024-01-09").astype(int) if planned else 0})
    return s, cov


def test_a_planned_promo_is_not_an_anomaly():
    s, cov = _promo_day(planned=True)
    v = VolumeDetector(freq="5min", warmup="8d").detect(s, cov)
    assert not v["flagged"].any()
    assert v["reason"].str.contains("promo planned: explained, not an alert").any()


def test_the_same_uplift_without_a_planned_promo_is_an_alert():
    s, cov = _promo_day(planned=False)
    v = VolumeDetector(freq="5min", warmup="8d").detect(s, cov)
    alerts = _alerts(v)
    assert len(alerts) >= 1
    assert (alerts["direction"] == "surge").all()
    assert "no promo planned" in alerts.iloc[0]["reason"]


def test_closed_points_expect_zero_and_are_never_flagged():
    s = _series(freq="D", days=120, rate=500, seed=8)
    s["open"] = np.where(s["ds"].dt.dayofweek == 6, 0, 1)
    s.loc[s["open"] == 0, "y"] = 0
    v = VolumeDetector(freq="D", warmup="28d").detect(s)
    closed = v[v["ds"].dt.dayofweek == 6]
    assert (closed["expected"] == 0).all() and not closed["flagged"].any()
    assert not v["flagged"].any()


@pytest.mark.parametrize(
    ("freq", "days", "warmup", "at"),
    [
        ("1min", 3, "2d", "2024-01-03 15:00"),
        ("5min", 10, "8d", "2024-01-10 15:00"),
        ("h", 40, "21d", "2024-02-05 15:00"),
        ("D", 200, "90d", "2024-06-03"),
        ("W", 7 * 80, "280d", "2025-03-03"),
    ],
)
def test_every_frequency_from_a_minute_to_a_week_flags_a_spike_once_and_nothing_else(freq, days, warmup, at):
    s = _series(freq=freq, days=days, rate=200, seed=9)
    if freq == "W":
        s["ds"] = pd.date_range("2024-01-01", periods=len(s), freq="W-MON")
    hit = s.index[s["ds"] == pd.Timestamp(at)]
    assert len(hit) == 1
    # below 30 minutes a spike must last a few steps to be a run on the one-hour short time scale
    steps = max(1, int(pd.Timedelta("15min") / step_length(freq)))
    s.loc[hit[0] : hit[0] + steps - 1, "y"] *= 4
    alerts = _alerts(VolumeDetector(freq=freq, warmup=warmup).detect(s))
    assert len(alerts) == 1
    assert pd.Timestamp(at) <= alerts["ds"].iloc[0] < pd.Timestamp(at) + steps * step_length(freq)


def test_warmup_is_measured_from_each_series_first_point():
    a = _series(days=4, seed=10, sid="a")
    b = _series(days=3, seed=11, sid="b", start="2024-01-02")
    v = VolumeDetector(freq="5min", warmup="1d").detect(pd.concat([a, b]))
    assert v.groupby("series_id")["ds"].min().to_dict() == {
        "a": pd.Timestamp("2024-01-02"),
        "b": pd.Timestamp("2024-01-03"),
    }


def test_timestamps_off_the_grid_are_refused_naming_the_series_and_the_fix():
    s = _series(days=1)
    s.loc[5, "ds"] += pd.Timedelta(minutes=2)
    with pytest.raises(
        ValueError, match=r"Series 'web': 1 timestamps are off its '5min' grid.*Fix: aggregate y"
    ):
        VolumeDetector(freq="5min").detect(s)


def test_negative_counts_duplicates_and_bad_parameters_are_refused_clearly():
    s = _series(days=1)
    with pytest.raises(ValueError, match=r"y must be a count >= 0, but 1 rows are negative"):
        VolumeDetector().detect(s.assign(y=np.where(s.index == 3, -1.0, s["y"])))
    with pytest.raises(ValueError, match=r"2 rows share a \(series_id, ds\)"):
        VolumeDetector().detect(pd.concat([s, s.iloc[[0]]]))
    with pytest.raises(ValueError, match=r"Unsupported frequency '7min'"):
        VolumeDetector(freq="7min").detect(s)
    with pytest.raises(ValueError, match=r"warmup must be a duration >= 0 such as '8d'.*Got 'eight days'"):
        VolumeDetector(warmup="eight days").detect(s)
    with pytest.raises(ValueError, match=r"warmup must be a duration >= 0 .*Got '-1d'"):
        VolumeDetector(warmup="-1d").detect(s)
    with pytest.raises(ValueError, match=r"needs columns series_id, ds, y; missing \['y'\]"):
        VolumeDetector().detect(s.drop(columns="y"))


def test_points_sent_twice_or_out_of_order_are_refused():
    s = _series(days=1)
    det = VolumeDetector(warmup="1h").fit(s)
    with pytest.raises(ValueError, match=r"is not after the last point already seen"):
        det.update("web", s["ds"].iloc[-1], 3)
    with pytest.raises(ValueError, match=r"Unknown driver 'promo'; this detector knows no drivers"):
        det.update("web", s["ds"].iloc[-1] + pd.Timedelta("5min"), 3, drivers={"promo": 1})


def test_driver_names_read_as_words_in_reasons():
    from training.volume.reasons import _driver_words

    assert [_driver_words(n) for n in ("promo_flag", "holiday_state_flag", "promo2_active_flag")] == [
        "promo",
        "holiday (state)",
        "promo2 active",
    ]


def _bursty(final_factor: float) -> pd.DataFrame:
    """A series whose normal days each hold one 3x burst; on day 10 a burst of ``final_factor``."""
    s = _series(days=10, seed=12)
    rng = np.random.default_rng(13)
    for day in range(9):
        at = day * 288 + int(rng.integers(100, 250))
        s.loc[at : at + 2, "y"] *= 3  # 15 minutes
    s.loc[9 * 288 + 180 : 9 * 288 + 182, "y"] *= final_factor
    return s


def test_the_return_level_keeps_a_series_usual_bursts_quiet_but_not_an_unusual_one():
    usual = _bursty(3)
    assert len(_alerts(VolumeDetector(freq="5min", warmup="8d", return_period=None).detect(usual))) >= 1
    assert len(_alerts(VolumeDetector(freq="5min", warmup="8d").detect(usual))) == 0
    unusual = _alerts(VolumeDetector(freq="5min", warmup="8d").detect(_bursty(12)))
    assert len(unusual) == 1
    assert pd.Timestamp("2024-01-10 15:00") <= unusual["ds"].iloc[0] <= pd.Timestamp("2024-01-10 15:10")


def test_a_weekly_rhythm_is_learned_into_the_expectation():
    """Saturday 0-4 am runs at 1.8x the other nights: the time-of-week profile learns it (tod + dow cannot)."""
    s = _series(freq="30min", days=10 * 7, rate=100, seed=14)
    saturday_night = (s["ds"].dt.dayofweek == 5) & (s["ds"].dt.hour < 4)
    s.loc[saturday_night, "y"] = np.random.default_rng(15).poisson(s.loc[saturday_night, "y"] * 1.8)
    v = VolumeDetector(freq="30min").detect(s)

    def expected_at_2am(weekday: int) -> float:
        week = v[(v["ds"] > v["ds"].max() - pd.Timedelta(days=7)) & (v["ds"].dt.dayofweek == weekday)]
        return float(week.loc[week["ds"].dt.hour == 2, "expected"].mean())

    assert expected_at_2am(5) > 1.4 * expected_at_2am(1)


def test_the_default_warmup_scales_with_the_grid():
    assert [VolumeDetector(freq=f).warmup_duration() for f in ("1min", "5min", "30min", "D", "W")] == [
        "2D",
        "2D",
        "2D",
        "28D",
        "91D",
    ]
    assert VolumeDetector(freq="5min", warmup="8d").warmup_duration() == "8d"
    v = VolumeDetector(freq="5min").detect(_series(days=3))
    assert v["ds"].min() == pd.Timestamp("2024-01-03")


def test_an_event_does_not_widen_the_band_of_the_next_one():
    """The scale learns from points outside events only: a two-hour 4x surge leaves it about as it was (were
    the 24 surge points learned from, clipped at 3 sd, the extra variance would grow by about 24 * 9 / 288 of
    the variance, i.e. most of it)."""
    from training.volume import kernel

    s = _series(days=7, seed=16)
    at = 6 * 288 + 168  # 14:00 on day 7
    det = VolumeDetector(freq="5min", warmup="2d").fit(s.iloc[:at])
    phi_before = det.states_["web"][kernel.PHI]
    surge = s.iloc[at : at + 24].assign(y=lambda f: f["y"] * 4)
    flagged = det.detect(surge)["flagged"]
    assert flagged.iloc[3:].all()
    phi_after = det.states_["web"][kernel.PHI]
    assert phi_after < 1.2 * phi_before


def test_a_detector_saved_by_another_version_is_refused_not_run_out_of_bounds():
    s = _series(days=1)
    det = VolumeDetector(freq="5min", warmup="1h").fit(s.iloc[:100])
    det.states_["web"] = det.states_["web"][:-70]  # an older, shorter state layout
    with pytest.raises(ValueError, match=r"written by another version of the volume detector.*--log-mlflow"):
        det.update("web", s["ds"].iloc[100], 3.0)


def test_a_forgotten_series_starts_again_from_nothing():
    s = _series(days=1)
    det = VolumeDetector(freq="5min", warmup="1h").fit(s.iloc[:50])
    det.forget_series("web")
    assert det.last_seen("web") is None and det.series_state("web") is None
    again = det.update("web", s["ds"].iloc[0], s["y"].iloc[0])
    fresh = VolumeDetector(freq="5min", warmup="1h").update("web", s["ds"].iloc[0], s["y"].iloc[0])
    assert again == fresh
