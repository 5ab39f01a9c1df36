"""Hierarchy levels from ``static`` columns, and the aggregate series a planner reads (a region, the total).

A hierarchy is given as a list of levels: names of ``static`` columns (``region``, ``store_type``, a channel
or a country) and/or ``total``. The series themselves are the bottom level, named ``series``. Each static
level groups the series by that column's value; ``total`` is the sum of all series. Levels need not nest: with
``region`` and ``store_type`` the series sum to their region *and* to their store type (a grouped hierarchy).

Aggregate ids: an aggregate is named ``<level>=<value>`` (``region=Bayern``) or ``total``; output rows carry
``level`` (``series``, the column's name or ``total``) and ``series_id`` = the value (``Bayern``) or ``total``.

Missing groups: a series that has no row in ``static`` belongs to the explicit group ``(none)`` of every static
level (counted in ``Hierarchy.report`` as ``series_without_<level>``), so the total still equals the sum of the
groups. A static row whose level value is empty is refused instead (it is a data error, not an absent row):
fill the value, or drop that row to put the series in ``(none)``.

Aggregate series (``aggregate_tables``): ``y`` is the sum of the members' observed ``y`` (missing when no member
has one: future rows stay unknown), ``open`` is 1 when any member is open, and the covariates the aggregate
model reads are the members' means (strings such as holiday codes become the share of members with a non-zero
code) plus ``open_share`` (open members / members, so a region where half the stores are closed reads 0.5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "Hierarchy",
    "parse_levels",
    "aggregate_tables",
    "aggregate_key",
    "member_sums",
    "combine_member_sums",
    "with_forecast_days",
    "SERIES_LEVEL",
    "TOTAL",
    "NO_GROUP",
]

SERIES_LEVEL = "series"
TOTAL = "total"
NO_GROUP = "(none)"
_ZERO_LIKE = frozenset({"0", "false", "no", "none", "n", "f", ""})


def aggregate_key(level: str, value: str) -> str:
    """The id of an aggregate: ``region=Bayern``, or ``total`` for the total."""
    return TOTAL if level == TOTAL else f"{level}={value}"


def parse_levels(levels: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"region,total"`` or ``["region", "total"]`` -> ``("region", "total")`` (order kept, duplicates dropped)."""
    if levels is None:
        return ()
    items = levels.split(",") if isinstance(levels, str) else list(levels)
    out: list[str] = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        if name == SERIES_LEVEL:
            raise ValueError(
                f"Level {SERIES_LEVEL!r} is the series themselves and always forecast; give only aggregate "
                f"levels (static column names and/or 'total'), e.g. 'region,total'. Got {levels!r}."
            )
        if name not in out:
            out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class Hierarchy:
    """Which aggregate each series belongs to, per level (build it with ``Hierarchy.from_static``).

    levels : the aggregate levels in the order given (static column names and/or ``total``).
    groups : one row per series (index ``series_id``, strings), one column per static level: the group value.
    report : counts, ``series_without_<level>`` for series put in the ``(none)`` group.
    """

    levels: tuple[str, ...]
    groups: pd.DataFrame
    report: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_static(
        cls, static: pd.DataFrame | None, series_ids: Iterable[str], levels: str | Iterable[str]
    ) -> Hierarchy:
        """Levels ``levels`` over the series ``series_ids``, grouped by the ``static`` columns they name."""
        lv = parse_levels(levels)
        if not lv:
            raise ValueError(
                "No hierarchy levels given: pass e.g. levels='region,total' (static columns or total)."
            )
        ids = pd.Index(pd.unique(pd.Series(list(series_ids), dtype="string")), name="series_id")
        columns = [name for name in lv if name != TOTAL]
        if columns and static is None:
            raise ValueError(
                f"Hierarchy level(s) {columns} need a static table with those columns (series_id, {columns[0]}, "
                "...): pass --static, or use only 'total'."
            )
        groups = pd.DataFrame(index=ids)
        report: dict[str, int] = {}
        if columns:
            assert static is not None
            absent = [c for c in columns if c not in static.columns]
            if absent:
                choices = [c for c in static.columns if c != "series_id"]
                raise ValueError(
                    f"Hierarchy level {absent[0]!r} is not a column of the static table (its columns: {choices}). "
                    "Use one of them or 'total', or add the column to the static table."
                )
            table = static.assign(series_id=static["series_id"].astype("string")).drop_duplicates("series_id")
            table = table.set_index("series_id").reindex(ids)
            present = ids.isin(static["series_id"].astype("string"))
            for col in columns:
                values = table[col].astype("string").str.strip()
                empty = present & (values.isna() | (values == "")).to_numpy()
                if empty.any():
                    bad = list(ids[empty][:5])
                    raise ValueError(
                        f"Static column {col!r} (a hierarchy level) is empty for {int(empty.sum())} series, e.g. "
                        f"{bad}. Fill it for those series, or drop their static rows to put them in the "
                        f"{NO_GROUP!r} group."
                    )
                groups[col] = values.where(present, NO_GROUP).astype(str).to_numpy()
                report[f"series_without_{col}"] = int((~present).sum())
        h = cls(lv, groups, report)
        clash = set(h.keys()["key"]) & set(ids)
        if clash:
            raise ValueError(
                f"Series id(s) {sorted(clash)[:5]} equal aggregate ids of the hierarchy; rename those series."
            )
        return h

    @property
    def static_levels(self) -> tuple[str, ...]:
        return tuple(lv for lv in self.levels if lv != TOTAL)

    @property
    def series_ids(self) -> pd.Index:
        return self.groups.index

    def keys(self) -> pd.DataFrame:
        """Every aggregate: ``key`` (``region=Bayern`` / ``total``), ``level`` and ``group`` (the value)."""
        rows = []
        for lv in self.levels:
            if lv == TOTAL:
                rows.append((TOTAL, TOTAL, TOTAL))
                continue
            for value in sorted(self.groups[lv].unique()):
                rows.append((aggregate_key(lv, value), lv, value))
        return pd.DataFrame(rows, columns=["key", "level", "group"])

    def membership(self) -> pd.DataFrame:
        """Long ``key, series_id``: one row per (aggregate, member series)."""
        parts = []
        for lv in self.levels:
            if lv == TOTAL:
                parts.append(pd.DataFrame({"key": TOTAL, "series_id": self.series_ids.to_numpy()}))
            else:
                keys = [aggregate_key(lv, v) for v in self.groups[lv].to_numpy()]
                parts.append(pd.DataFrame({"key": keys, "series_id": self.series_ids.to_numpy()}))
        out = pd.concat(parts, ignore_index=True)
        return out.astype({"key": "string", "series_id": "string"})

    def summing_matrix(self) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """``(S_df, tags)`` in Nixtla hierarchicalforecast's format.

        ``S_df``: column ``unique_id`` (aggregates first, then the series) and one 0/1 column per series;
        ``tags``: level -> the ``unique_id`` values of that level (``series`` for the bottom level).
        """
        members = self.membership()
        agg = (
            pd.crosstab(members["key"], members["series_id"])
            .reindex(index=self.keys()["key"], columns=self.series_ids)
            .fillna(0)
        )
        bottom = pd.DataFrame(np.eye(len(self.series_ids)), index=self.series_ids, columns=self.series_ids)
        S = pd.concat([agg.astype("float64"), bottom])
        S.index.name = "unique_id"
        S_df = S.reset_index()
        S_df["unique_id"] = S_df["unique_id"].astype(str)
        S_df.columns = ["unique_id", *[str(c) for c in self.series_ids]]
        k = self.keys()
        tags = {lv: k.loc[k["level"] == lv, "key"].to_numpy(dtype=object) for lv in self.levels}
        tags[SERIES_LEVEL] = self.series_ids.to_numpy(dtype=object).astype(str)
        return S_df, tags

    def describe(self) -> dict[str, int]:
        """Counts for logs: aggregates per level and series put in ``(none)``."""
        k = self.keys()
        return {f"aggregates_{lv}": int((k["level"] == lv).sum()) for lv in self.levels} | self.report


def aggregate_tables(
    hierarchy: Hierarchy,
    series: pd.DataFrame | None,
    covariates: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    *,
    sums: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The aggregates' own ``series``, ``covariates`` and ``static`` tables (see the module docstring).

    ``series`` may hold rows after the forecast origin (``y`` missing, ``open`` known): they give the
    aggregates' ``open`` and ``open_share`` for the horizon. The series table also has ``n_open`` (open members
    with a row that day; known in advance like ``open``), which is not a model input. Returns ``(series, covariates, static, counts)``
    with ``counts["aggregate_rows_with_missing_members"]``: aggregate rows where some member had no row or no
    ``y`` while others had one (their ``y`` is the sum of the members that reported).

    ``sums`` (``member_sums`` of the series, e.g. combined over partitions by ``combine_member_sums``) replaces
    ``series``, which is then not read: the dask engine sums each partition of series on its worker.
    """
    members = hierarchy.membership()
    size = members.groupby("key").size().rename("n_members")
    if sums is None:
        if series is None:
            raise ValueError("aggregate_tables needs the series or their member_sums (sums=...).")
        sums = member_sums(hierarchy, series)
    agg = sums
    agg = agg.reset_index(drop=True).merge(size, left_on="key", right_index=True)
    partial = (agg["n_obs"] > 0) & (agg["n_obs"] < agg["n_members"])
    counts = {"aggregate_rows_with_missing_members": int(partial.sum())}
    agg_series = pd.DataFrame(
        {
            "series_id": agg["key"].astype("string"),
            "ds": agg["ds"],
            "y": agg["y"].astype("float64"),
            "open": (agg["n_open"] > 0).astype("int8"),
            "n_open": agg["n_open"].astype("int64"),
        }
    )
    cov = pd.DataFrame(
        {
            "series_id": agg["key"].astype("string"),
            "ds": agg["ds"],
            "open_share": (agg["n_open"] / agg["n_members"]).astype("float64"),
        }
    )
    if covariates is not None and len(covariates):
        cov = cov.merge(_aggregate_covariates(covariates, members), on=["series_id", "ds"], how="left")
        # rows without series_id apply to every series, so to every aggregate too (numbers as they are)
        shared = (
            covariates
            if "series_id" not in covariates.columns
            else covariates.loc[covariates["series_id"].isna()]
        )
        if len(shared):
            cov = pd.concat([cov, _numeric_covariates(shared.drop(columns="series_id", errors="ignore"))])
    agg_static = _aggregate_static(hierarchy, static)
    return agg_series, cov.reset_index(drop=True), agg_static, counts


def member_sums(hierarchy: Hierarchy, series: pd.DataFrame) -> pd.DataFrame:
    """Per aggregate and day, ``key, ds, y`` (the sum of the members' observed ``y``, missing when none has
    one), ``n_open`` (open members) and ``n_obs`` (members with an observed ``y``). Sums over disjoint sets of
    series add up (``combine_member_sums``), so each partition of a large table can be summed on its own."""
    members = hierarchy.membership()
    s = series.assign(series_id=series["series_id"].astype("string"))
    if "open" not in s.columns:
        s = s.assign(open=np.int8(1))
    joined = s[["series_id", "ds", "y", "open"]].merge(members, on="series_id", how="inner")
    joined["observed"] = joined["y"].notna()
    return _sum_by_key_and_day(joined.rename(columns={"open": "n_open", "observed": "n_obs"}))


def combine_member_sums(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """``member_sums`` of disjoint sets of series added up: the sums of all those series together."""
    return _sum_by_key_and_day(pd.concat(list(parts), ignore_index=True))


def _sum_by_key_and_day(frame: pd.DataFrame) -> pd.DataFrame:
    g = frame.groupby(["key", "ds"], sort=True)
    out = pd.DataFrame({"y": g["y"].sum(min_count=1), "n_open": g["n_open"].sum(), "n_obs": g["n_obs"].sum()})
    return out.reset_index()


def with_forecast_days(series: pd.DataFrame, series_pred: pd.DataFrame) -> pd.DataFrame:
    """``series`` plus a row (``y`` missing, ``open`` = forecast > 0) for every forecast day it does not list."""
    keys = ["series_id", "ds"]
    pred = series_pred[[*keys, "yhat"]].assign(series_id=series_pred["series_id"].astype("string"))
    listed = series[keys].assign(series_id=series["series_id"].astype("string"), _listed=True)
    new = pred.merge(listed, on=keys, how="left")
    new = new.loc[new["_listed"].isna()]
    if new.empty:
        return series
    rows = pd.DataFrame(
        {
            "series_id": new["series_id"],
            "ds": new["ds"],
            "y": np.nan,
            "open": (new["yhat"] > 0).astype("int8"),
        }
    )
    known = series.assign(series_id=series["series_id"].astype("string"))
    if "open" not in known.columns:
        known["open"] = np.int8(1)
    return pd.concat([known, rows], ignore_index=True)


def _aggregate_covariates(covariates: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """Per aggregate and date, the mean of each per-series covariate over the members that have it."""
    if "series_id" not in covariates.columns:
        return pd.DataFrame(columns=["series_id", "ds"])
    own = covariates.loc[covariates["series_id"].notna()]
    own = _numeric_covariates(own.assign(series_id=own["series_id"].astype("string")))
    joined = own.merge(members, on="series_id", how="inner").drop(columns="series_id")
    values = [c for c in joined.columns if c not in ("key", "ds")]
    out = joined.groupby(["key", "ds"], sort=True)[values].mean().reset_index()
    return out.rename(columns={"key": "series_id"}).astype({"series_id": "string"})


def _numeric_covariates(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers stay; strings (holiday codes, promo types) become 1.0 when non-zero-like, else 0.0."""
    out = frame.copy()
    for col in out.columns:
        if col in ("series_id", "ds") or pd.api.types.is_numeric_dtype(out[col]):
            continue
        text = out[col].astype("string").str.strip().str.lower()
        out[col] = np.where(text.isna(), np.nan, (~text.isin(list(_ZERO_LIKE))).astype("float64"))
    return out


def _aggregate_static(hierarchy: Hierarchy, static: pd.DataFrame | None) -> pd.DataFrame:
    """``series_id`` (the aggregate key), ``level`` and, per static level, the group value of that level's
    aggregates (so weather, joined through ``static.region``, reaches the region aggregates)."""
    k = hierarchy.keys()
    out = pd.DataFrame({"series_id": k["key"].astype("string"), "level": k["level"].astype("string")})
    for lv in hierarchy.static_levels:
        out[lv] = k["group"].where(k["level"] == lv).astype("string")
    if static is not None and "region" in static.columns and "region" not in out.columns:
        out["region"] = pd.Series(pd.NA, index=out.index, dtype="string")
    return out
