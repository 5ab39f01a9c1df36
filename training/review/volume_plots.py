"""Volume-anomaly plot for the operator: one series with its expected band and its alerts.

Like ``training.review.forecast_plots``: returns a matplotlib ``Figure`` with a title, axis labels with units
and a legend; the numbers are the verdict rows of ``training.volume`` (``orderpulse detect volume --out``).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: CI, servers, nbconvert
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["volume_band"]

_COLOURS = {"surge": "tab:red", "drop": "tab:purple"}


def volume_band(
    verdicts: pd.DataFrame,
    series_id: str,
    *,
    start: object = None,
    end: object = None,
    unit: str = "orders",
) -> Figure:
    """Observed volume of ``series_id`` with the expected value and its 95% band, flagged points coloured by
    direction and each alert (the first point of an event) marked with a vertical line and its reason in the
    legend (at most five). ``start``/``end`` restrict the time range."""
    rows = verdicts.loc[verdicts["series_id"].astype(str) == str(series_id)].sort_values("ds")
    ds = pd.to_datetime(rows["ds"])
    if start is not None:
        rows, ds = rows.loc[ds >= pd.Timestamp(start)], ds.loc[ds >= pd.Timestamp(start)]
    if end is not None:
        rows, ds = rows.loc[ds <= pd.Timestamp(end)], ds.loc[ds <= pd.Timestamp(end)]
    if rows.empty:
        raise ValueError(f"No verdicts of series {series_id!r} in the requested range; nothing to plot.")
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.fill_between(ds, rows["lo"], rows["hi"], color="tab:blue", alpha=0.18, step="mid", label="95% band")
    ax.plot(ds, rows["expected"], color="tab:blue", linewidth=1.0, label="expected")
    ax.plot(ds, rows["y"], color="black", linewidth=0.8, label=f"observed {unit}")
    flagged = rows["flagged"].astype(bool).to_numpy()
    previous = pd.Series(flagged).shift(1, fill_value=False).to_numpy()
    for direction, colour in _COLOURS.items():
        mask = flagged & (rows["direction"] == direction).to_numpy()
        if mask.any():
            ax.scatter(
                ds[mask], rows["y"][mask], s=14, color=colour, zorder=3, label=f"flagged ({direction})"
            )
    starts = flagged & ~previous
    for k, (when, reason, direction) in enumerate(
        zip(ds[starts], rows["reason"][starts], rows["direction"][starts], strict=True)
    ):
        label = f"alert {when:%Y-%m-%d %H:%M}: {str(reason).split(';')[0]}" if k < 5 else None
        ax.axvline(when, color=_COLOURS.get(direction, "tab:red"), linestyle="--", linewidth=0.9, label=label)
    ax.set_title(
        f"Volume of {series_id}: {int(starts.sum())} alert(s), {int(flagged.sum())} flagged point(s)"
    )
    ax.set_xlabel("time")
    ax.set_ylabel(f"{unit} per step")
    ax.legend(loc="upper left", fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
