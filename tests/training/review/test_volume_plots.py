"""training/review/volume_plots.py: the band plot shows the series, its band and one line per alert."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.review.volume_plots import volume_band
from training.volume.detector import VolumeDetector


def _verdicts():
    ds = pd.date_range("2024-01-01", periods=9 * 288, freq="5min")
    y = np.random.default_rng(0).poisson(80, len(ds)).astype(float)
    y[(ds >= "2024-01-09 10:00") & (ds < "2024-01-09 10:30")] *= 4
    return VolumeDetector(freq="5min", warmup="8d").detect(
        pd.DataFrame({"series_id": "web", "ds": ds, "y": y})
    )


def test_the_band_plot_has_the_series_its_band_and_one_line_per_alert():
    fig = volume_band(_verdicts(), "web")
    ax = fig.axes[0]
    flagged = int(_verdicts()["flagged"].sum())
    assert flagged >= 6  # the 30-minute surge, plus the hold after it
    assert ax.get_title() == f"Volume of web: 1 alert(s), {flagged} flagged point(s)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["95% band", "expected", "observed orders"]
    assert "flagged (surge)" in labels
    assert [lab for lab in labels if lab.startswith("alert 2024-01-09 10:00: ")]
    assert ax.get_ylabel() == "orders per step"


def test_an_unknown_series_or_empty_range_is_refused():
    with pytest.raises(ValueError, match="No verdicts of series 'shop'"):
        volume_band(_verdicts(), "shop")
