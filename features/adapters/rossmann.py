"""Rossmann Store Sales (Kaggle 2015) + state weather -> OrderPulse series, covariates, weather, static.

Source files (see ``../shared/data/README.md``): ``train.csv.gz``, ``store.csv``, ``store_states.csv`` and
``weather/<State name>.csv`` (";"-separated, from the 3rd-place "entity embeddings" solution).

Output tables (they pass ``features.validation.validate`` unchanged):

* ``series``: ``series_id`` (= str(Store)), ``ds`` (Date), ``y`` (Sales), ``open`` (Open; closed days have
  ``y = 0`` and are known in advance).
* ``covariates`` (per store and day): ``promo`` (0/1), ``state_holiday`` (string "0"/"a"/"b"/"c"),
  ``school_holiday`` (0/1), ``promo2_active`` (0/1, see :func:`promo2_active`). The Kaggle train file has no
  future rows, so covariates exist only for the dates in it; a forecast needs the caller to supply the
  horizon's covariates (Rossmann's promo calendar is planned in advance, state/school holidays are public).
  Dates missing from the train file (the 180 stores without 2014-07-01 .. 2014-12-31) have no covariates.
* ``weather``: ``region`` (German state name as in the weather file names), ``ds``, ``temp_max``,
  ``temp_mean``, ``temp_min``, ``precip_mm``, ``humidity_mean``, ``pressure_mean``, ``wind_mean``,
  ``cloud_cover`` and 0/1 flags ``event_rain``, ``event_snow``, ``event_fog``, ``event_thunderstorm``,
  ``event_hail`` (parsed from "Events" such as "Fog-Rain"; a blank means no event). Only the states that some
  store is in; the full weather range (to 2015-09-17, beyond the sales) is kept.
* ``static``: ``series_id``, ``region``, ``state_code`` (as in store_states.csv), ``store_type``,
  ``assortment``, ``competition_distance``, ``competition_open_since_year``,
  ``competition_open_since_month``, ``promo2`` (0/1), ``promo2_since_year``, ``promo2_since_week``,
  ``promo_interval`` (e.g. "Jan,Apr,Jul,Oct"); blanks stay missing.

Quirks handled (and counted in the report): the state code pair "HB,NI" (stores in Bremen/Lower Saxony; Bremen
is an enclave inside Lower Saxony and the pair cannot be split) maps to Niedersachsen; weather files that are
byte-for-byte copies of another state's (SchleswigHolstein == MecklenburgVorpommern in the source) are
kept and reported, since no better data exists; the 2014H2 gap and open days with zero sales are counted,
not repaired.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from features.adapters.report import AdapterReport

__all__ = [
    "DEFAULT_SOURCE",
    "STATE_NAMES",
    "TABLES",
    "load",
    "read_raw",
    "adapt",
    "map_states",
    "promo2_active",
    "promo2_start",
]

DEFAULT_SOURCE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rossmann"
TABLES = ("series", "covariates", "weather", "static")

STATE_NAMES: dict[str, str] = {
    "BW": "BadenWuerttemberg",
    "BY": "Bayern",
    "BE": "Berlin",
    "BB": "Brandenburg",
    "HB": "Bremen",
    "HH": "Hamburg",
    "HE": "Hessen",
    "MV": "MecklenburgVorpommern",
    "NI": "Niedersachsen",
    "NW": "NordrheinWestfalen",
    "RP": "RheinlandPfalz",
    "SL": "Saarland",
    "SN": "Sachsen",
    "ST": "SachsenAnhalt",
    "SH": "SchleswigHolstein",
    "TH": "Thueringen",
    # Bremen is an enclave in Lower Saxony; the source does not say which of the two each store is in.
    "HB,NI": "Niedersachsen",
}

_MONTHS = {
    "Jan": 1,
    "Feb": 2,
    "Mar": 3,
    "Apr": 4,
    "May": 5,
    "Jun": 6,
    "Jul": 7,
    "Aug": 8,
    "Sep": 9,
    "Sept": 9,
    "Oct": 10,
    "Nov": 11,
    "Dec": 12,
}
_RAW_COLUMNS = {
    "train": ("Store", "Date", "Sales", "Open", "Promo", "StateHoliday", "SchoolHoliday"),
    "store": (
        "Store",
        "StoreType",
        "Assortment",
        "CompetitionDistance",
        "CompetitionOpenSinceMonth",
        "CompetitionOpenSinceYear",
        "Promo2",
        "Promo2SinceWeek",
        "Promo2SinceYear",
        "PromoInterval",
    ),
    "store_states": ("Store", "State"),
    "weather": (
        "Date",
        "Max_TemperatureC",
        "Mean_TemperatureC",
        "Min_TemperatureC",
        "Precipitationmm",
        "Mean_Humidity",
        "Mean_Sea_Level_PressurehPa",
        "Mean_Wind_SpeedKm_h",
        "CloudCover",
        "Events",
    ),
}
_WEATHER_RENAME = {
    "Max_TemperatureC": "temp_max",
    "Mean_TemperatureC": "temp_mean",
    "Min_TemperatureC": "temp_min",
    "Precipitationmm": "precip_mm",
    "Mean_Humidity": "humidity_mean",
    "Mean_Sea_Level_PressurehPa": "pressure_mean",
    "Mean_Wind_SpeedKm_h": "wind_mean",
    "CloudCover": "cloud_cover",
}
_EVENTS = ("rain", "snow", "fog", "thunderstorm", "hail")


def load(source_dir: str | Path = DEFAULT_SOURCE) -> tuple[dict[str, pd.DataFrame], AdapterReport]:
    """Read the Rossmann files under ``source_dir`` and convert them: ``adapt(**read_raw(source_dir))``."""
    return adapt(**read_raw(source_dir))


def read_raw(source_dir: str | Path = DEFAULT_SOURCE) -> dict:
    """The raw source frames: ``train``, ``store``, ``store_states`` and ``weather`` (state name -> frame)."""
    src = Path(source_dir)
    needed = [src / "train.csv.gz", src / "store.csv", src / "store_states.csv", src / "weather"]
    absent = [str(p) for p in needed if not p.exists()]
    if absent:
        raise FileNotFoundError(
            f"Rossmann source incomplete in {str(src)!r}: missing {absent}. Point source_dir at the folder "
            "holding train.csv.gz, store.csv, store_states.csv and weather/ (../shared/data/rossmann)."
        )
    codes = {"StateHoliday": "string", "SchoolHoliday": "string"}
    weather = {p.stem: pd.read_csv(p, sep=";") for p in sorted((src / "weather").glob("*.csv"))}
    return {
        "train": pd.read_csv(src / "train.csv.gz", dtype=codes),
        "store": pd.read_csv(
            src / "store.csv",
            dtype={"PromoInterval": "string", "StoreType": "string", "Assortment": "string"},
        ),
        "store_states": pd.read_csv(src / "store_states.csv", dtype={"State": "string"}),
        "weather": weather,
    }


def adapt(
    train: pd.DataFrame,
    store: pd.DataFrame,
    store_states: pd.DataFrame,
    weather: Mapping[str, pd.DataFrame],
) -> tuple[dict[str, pd.DataFrame], AdapterReport]:
    """Convert raw Rossmann frames (as in the source files) into OrderPulse's four input tables."""
    _require(train, "train")
    _require(store, "store")
    _require(store_states, "store_states")
    report = AdapterReport("rossmann")

    static = _static(store, store_states, report)
    series, covariates = _series_and_covariates(train, static, report)
    regions = sorted(static["region"].dropna().unique())
    weather_table = _weather(weather, regions, report)
    return {"series": series, "covariates": covariates, "weather": weather_table, "static": static}, report


def map_states(codes: pd.Series) -> pd.Series:
    """State codes from store_states.csv ("BY", "HB,NI", ...) -> weather-file state names ("Bayern", ...).

    Raises ``ValueError`` naming the codes it does not know.
    """
    clean = codes.astype("string").str.replace(" ", "", regex=False)
    unknown = sorted(set(clean.dropna()) - set(STATE_NAMES))
    if unknown:
        raise ValueError(
            f"Unknown German state code(s) {unknown} in store_states.State; known codes: "
            f"{sorted(STATE_NAMES)}. Fix the codes or extend rossmann.STATE_NAMES."
        )
    return clean.map(STATE_NAMES).astype("string")


def promo2_start(year: pd.Series, week: pd.Series) -> pd.Series:
    """The Monday of ISO week ``week`` of ``year`` (when a store joined Promo2); NaT where either is missing."""
    y = pd.to_numeric(year, errors="coerce")
    w = pd.to_numeric(week, errors="coerce")
    ok = y.notna() & w.notna()
    jan4 = pd.to_datetime(
        pd.DataFrame({"year": y.where(ok, 2000), "month": 1, "day": 4}).astype("int64"), errors="coerce"
    )
    monday_week1 = jan4 - pd.to_timedelta(jan4.dt.weekday, unit="D")
    start = monday_week1 + pd.to_timedelta((w.where(ok, 1) - 1) * 7, unit="D")
    return start.where(ok).astype("datetime64[ns]")


def promo2_active(ds: pd.Series, promo2: pd.Series, since: pd.Series, promo_interval: pd.Series) -> pd.Series:
    """1 where a store takes part in Promo2 (``promo2 == 1``), ``ds`` is on/after ``since`` (its start
    Monday) and the month of ``ds`` is one of ``promo_interval`` ("Jan,Apr,Jul,Oct"); else 0. All four are
    aligned row by row (int8 result on ``ds``'s index).
    """
    masks = _interval_month_bits(promo_interval)
    month = pd.to_datetime(ds).dt.month.to_numpy()
    in_month = ((masks.to_numpy() >> (month - 1)) & 1).astype(bool)
    joined = pd.to_datetime(ds).to_numpy() >= pd.to_datetime(since).to_numpy()  # NaT compares False
    active = (pd.to_numeric(promo2).fillna(0).to_numpy() == 1) & joined & in_month
    return pd.Series(active.astype("int8"), index=ds.index, name="promo2_active")


# ---------------------------------------------------------------------------------------------------------


def _require(df: pd.DataFrame, what: str) -> None:
    missing = [c for c in _RAW_COLUMNS[what] if c not in df.columns]
    if missing:
        raise ValueError(
            f"Rossmann {what} frame lacks column(s) {missing} (found {list(df.columns)[:12]}); "
            f"pass the file as published on Kaggle / in ../shared/data/rossmann."
        )


def _interval_month_bits(promo_interval: pd.Series) -> pd.Series:
    """ "Jan,Apr,Jul,Oct" -> bit mask with bit (month-1) set; blank -> 0. Vectorised over unique values."""
    values = promo_interval.astype("string").fillna("")
    uniques = values.unique()
    bits: dict[str, int] = {}
    for text in uniques:  # a handful of distinct strings, not rows
        mask = 0
        for token in (t.strip() for t in str(text).split(",")):
            if not token:
                continue
            if token not in _MONTHS:
                raise ValueError(
                    f"PromoInterval {text!r} names an unknown month {token!r}; use comma-separated "
                    f"English month abbreviations such as 'Jan,Apr,Jul,Oct'."
                )
            mask |= 1 << (_MONTHS[token] - 1)
        bits[text] = mask
    return values.map(bits).astype("int64")


def _static(store: pd.DataFrame, store_states: pd.DataFrame, report: AdapterReport) -> pd.DataFrame:
    states = store_states.assign(series_id=store_states["Store"].astype("int64").astype(str))
    states = states.assign(state_code=states["State"].astype("string").str.replace(" ", "", regex=False))
    states["region"] = map_states(states["state_code"])
    report.count(
        "stores_with_state_pair_HB_NI_mapped_to_Niedersachsen", int((states["state_code"] == "HB,NI").sum())
    )

    s = store.assign(series_id=store["Store"].astype("int64").astype(str))
    out = pd.DataFrame(
        {
            "series_id": s["series_id"].astype("string"),
            "store_type": s["StoreType"].astype("string"),
            "assortment": s["Assortment"].astype("string"),
            "competition_distance": pd.to_numeric(s["CompetitionDistance"]).astype("float64"),
            "competition_open_since_year": pd.to_numeric(s["CompetitionOpenSinceYear"]).astype("float64"),
            "competition_open_since_month": pd.to_numeric(s["CompetitionOpenSinceMonth"]).astype("float64"),
            "promo2": pd.to_numeric(s["Promo2"]).astype("int8"),
            "promo2_since_year": pd.to_numeric(s["Promo2SinceYear"]).astype("float64"),
            "promo2_since_week": pd.to_numeric(s["Promo2SinceWeek"]).astype("float64"),
            "promo_interval": s["PromoInterval"].astype("string").str.strip().replace("", pd.NA),
        }
    )
    out = out.merge(
        states[["series_id", "region", "state_code"]].astype("string"), on="series_id", how="left"
    )
    report.count("stores", len(out))
    report.count("stores_without_state", int(out["region"].isna().sum()))
    report.count("stores_missing_competition_distance", int(out["competition_distance"].isna().sum()))
    report.count(
        "stores_missing_competition_open_since", int(out["competition_open_since_year"].isna().sum())
    )
    cols = [
        "series_id",
        "region",
        "state_code",
        "store_type",
        "assortment",
        "competition_distance",
        "competition_open_since_year",
        "competition_open_since_month",
        "promo2",
        "promo2_since_year",
        "promo2_since_week",
        "promo_interval",
    ]
    return out[cols].sort_values("series_id", key=_numeric_order).reset_index(drop=True)


def _series_and_covariates(
    train: pd.DataFrame, static: pd.DataFrame, report: AdapterReport
) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = pd.DataFrame(
        {
            "series_id": train["Store"].astype("int64").astype(str).astype("string"),
            "ds": pd.to_datetime(train["Date"], format="%Y-%m-%d"),
        }
    )
    series = t.assign(
        y=pd.to_numeric(train["Sales"]).astype("float64"),
        open=pd.to_numeric(train["Open"]).astype("int8"),
    )
    holiday = train["StateHoliday"].astype("string").str.strip()
    # some exports write the "no holiday" code as the number 0 and others as the string "0"
    holiday = holiday.replace({"0.0": "0"})
    unknown = sorted(set(holiday.dropna()) - {"0", "a", "b", "c"})
    if unknown:
        raise ValueError(
            f"StateHoliday holds unknown code(s) {unknown}; expected '0' (none), 'a' (public), 'b' (Easter) "
            f"or 'c' (Christmas)."
        )
    store_attrs = static.set_index("series_id")
    since = promo2_start(store_attrs["promo2_since_year"], store_attrs["promo2_since_week"])
    covariates = t.assign(
        promo=pd.to_numeric(train["Promo"]).astype("int8"),
        state_holiday=holiday,
        school_holiday=pd.to_numeric(train["SchoolHoliday"]).astype("int8"),
        promo2_active=promo2_active(
            t["ds"],
            t["series_id"].map(store_attrs["promo2"]),
            t["series_id"].map(since),
            t["series_id"].map(store_attrs["promo_interval"]),
        ),
    )
    order = np.lexsort((t["ds"].to_numpy(), _numeric_order(t["series_id"]).to_numpy()))
    series = series.iloc[order].reset_index(drop=True)
    covariates = covariates.iloc[order].reset_index(drop=True)

    report.count("series_rows", len(series))
    report.count("series", series["series_id"].nunique())
    report.count("closed_days", int((series["open"] == 0).sum()))
    report.count("open_days_with_zero_sales_kept", int(((series["open"] == 1) & (series["y"] == 0)).sum()))
    span = series.groupby("series_id", sort=False)["ds"].agg(["min", "max", "size"])
    missing_days = (span["max"] - span["min"]).dt.days + 1 - span["size"]
    report.count("series_with_missing_days", int((missing_days > 0).sum()))
    report.count("missing_days_not_filled", int(missing_days.sum()))
    h2_2014 = series["ds"].between("2014-07-01", "2014-12-31")
    with_h2 = series.loc[h2_2014, "series_id"].unique()
    report.count("series_starting_after_first_date", int((span["min"] > span["min"].min()).sum()))
    report.count("series_without_2014H2_rows", int((~span.index.isin(with_h2)).sum()))
    report.count(
        "stores_in_train_not_in_store_csv",
        int((~series["series_id"].drop_duplicates().isin(static["series_id"])).sum()),
    )
    report.note(
        "covariates cover only the dates in train.csv (no future rows in the source); supply the "
        "forecast horizon's promo / holiday calendar to forecast"
    )
    return series, covariates


def _weather(weather: Mapping[str, pd.DataFrame], regions: list[str], report: AdapterReport) -> pd.DataFrame:
    absent = [r for r in regions if r not in weather]
    report.count("store_regions_without_weather_file", len(absent))
    if absent:
        report.note(f"no weather file for region(s) {absent}: their stores get no weather rows")
    _report_identical_files(weather, regions, report)
    frames = []
    for region in (r for r in regions if r in weather):  # one frame per state file, not per row
        w = weather[region]
        _require(w, "weather")
        out = w[list(_WEATHER_RENAME)].rename(columns=_WEATHER_RENAME).astype("float64")
        events = w["Events"].astype("string").str.lower().fillna("")
        for event in _EVENTS:
            out[f"event_{event}"] = events.str.contains(event, regex=False).astype("int8")
        out.insert(0, "ds", pd.to_datetime(w["Date"], format="%Y-%m-%d"))
        out.insert(0, "region", region)
        frames.append(out)
    table = pd.concat(frames, ignore_index=True)
    table["region"] = table["region"].astype("string")
    value_cols = list(_WEATHER_RENAME.values())
    report.count("weather_rows", len(table))
    report.count("weather_missing_values_kept", int(table[value_cols].isna().sum().sum()))
    return table.sort_values(["region", "ds"]).reset_index(drop=True)


def _report_identical_files(
    weather: Mapping[str, pd.DataFrame], regions: list[str], report: AdapterReport
) -> None:
    digests: dict[int, str] = {}
    n = 0
    for name in sorted(weather):
        digest = int(pd.util.hash_pandas_object(weather[name], index=False).sum())
        if digest in digests:
            n += 1
            used = [x for x in (digests[digest], name) if x in regions]
            report.note(
                f"weather of {name} is identical to {digests[digest]} in the source (kept as is; "
                f"used by stores in: {used or 'none'})"
            )
        else:
            digests[digest] = name
    report.count("weather_files_identical_to_another", n)


def _numeric_order(ids: pd.Series) -> pd.Series:
    """Sort key: numeric store ids in numeric order (1, 2, 10 rather than 1, 10, 2)."""
    return pd.to_numeric(ids, errors="coerce").fillna(np.inf)
