"""Benchmark: order-volume anomalies on the NAB volume series (nyc_taxi at 30 min, five Twitter volumes at 5 min).

    python benchmarks/volume_anomaly_nab.py [--source ../shared/data/nab] [--warmup 8d] [--latency N] [--loso]
        [--loso-also PARAM=V1,V2 ...] [--events]

(``$ORDERPULSE_SHARED_DATA`` overrides ``../shared/data``, e.g. from a git worktree.)

Event-level scoring (``training.volume.scoring``): a labelled window is detected when at least one flag falls
inside it; each run of consecutive flags outside every window is one false alarm; F1 from windows detected
and false alarms, printed with the per-series detail (the rule issue 14 documents; NAB itself weighs each
detection by its position in the window, which this count does not). Windows that end inside the warm-up
count as missed (nothing can be flagged there). ``--loso``: leave-one-series-out over the detector's design
choices (time-of-week profile, warm-up, short time scale; ``--loso-also threshold=0.99999,0.999999`` adds any
detector parameter's values to the choice), to check that they generalise. ``--events``: every
alert event with its timing against the windows (inside one and how late, or a false alarm and how far from
the nearest window); the ``(no data)`` column counts alerts opened by a count of exactly 0.
OrderPulse's ``VolumeDetector`` runs at its defaults (only ``--freq`` and ``--warmup`` given), next to a
rolling z-score baseline computed in the same run: mean and sd of the previous day of points, flag
``|z| >= 3`` after the same warm-up. Published on these six series (issue 14): contextOSE 13/20 windows,
10 false alarms (F1 0.605); ARTime 20/20, 42 false alarms (F1 0.49). Also batch throughput (points/s) and
the latency of a verdict through the service: ``--latency N`` posts the first N points of the IBM series one
request at a time to ``POST /v1/actuals`` of the service under uvicorn (one worker, SQLite audit database in a
temporary folder, warm-up 1 day) and prints p50/p99 of the requests after the warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import shared_data  # noqa: E402  (puts the repository on sys.path)
from training.volume.detector import VolumeDetector  # noqa: E402
from training.volume.scoring import EventScore, event_score  # noqa: E402

FILES = {
    "nyc_taxi.csv": "30min",
    "Twitter_volume_AAPL.csv": "5min",
    "Twitter_volume_AMZN.csv": "5min",
    "Twitter_volume_GOOG.csv": "5min",
    "Twitter_volume_FB.csv": "5min",
    "Twitter_volume_IBM.csv": "5min",
}


def load(source: Path, name: str) -> pd.DataFrame:
    df = pd.read_csv(source / name, parse_dates=["timestamp"])
    return pd.DataFrame({"series_id": name.removesuffix(".csv"), "ds": df["timestamp"], "y": df["value"]})


def rolling_z(series: pd.DataFrame, freq: str, warmup: str, z: float = 3.0) -> np.ndarray:
    """The baseline: |y - mean| / sd of the previous day of points >= z, after the warm-up."""
    window = int(pd.Timedelta("1D") / pd.Timedelta(freq))
    y = series["y"].astype("float64")
    past = y.shift(1).rolling(window, min_periods=window // 2)
    score = (y - past.mean()).abs() / past.std().replace(0, np.nan)
    after = series["ds"] >= series["ds"].iloc[0] + pd.Timedelta(warmup)
    return ((score >= z) & after).to_numpy()


def verdict_latency(series: pd.DataFrame) -> tuple[float, float, int, float, float]:
    """p50 / p99 (ms) of one-point ``POST /v1/actuals`` requests after a 1-day warm-up: the service under
    uvicorn (one worker, no models, SQLite audit database in a temporary folder), one keep-alive client; then
    p50 / p99 of as many ``GET /v1/models`` (an authenticated route that does no work: the floor)."""
    import os
    import signal
    import socket
    import subprocess
    import tempfile

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "ORDERPULSE_PROFILE": "dev",
            "ORDERPULSE_API_KEYS": "bench-key",
            "ORDERPULSE_MLRUNS_DIR": tmp,
            "ORDERPULSE_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
            "ORDERPULSE_VOLUME_FREQ": "5min",
            "ORDERPULSE_VOLUME_WARMUP": "1d",
        }
        uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app_from_env"]
        proc = subprocess.Popen(
            [*uvicorn, "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            conn = _connect(port, proc)
            seconds, warm = [], []
            for row in series.itertuples():
                point = {"series_id": "ibm", "ds": row.ds.isoformat(), "y": float(row.y)}
                body = json.dumps({"actuals": [point]}).encode()  # bytes: sent with the headers in one send()
                t0 = time.perf_counter()
                conn.request(
                    "POST",
                    "/v1/actuals",
                    body,
                    {"X-API-Key": "bench-key", "Content-Type": "application/json"},
                )
                response = conn.getresponse()
                payload = response.read()
                seconds.append(time.perf_counter() - t0)
                if response.status != 200:
                    raise RuntimeError(f"POST /v1/actuals answered {response.status}: {payload[:300]!r}")
                warm.append(json.loads(payload)["volume"][0]["status"] == "warmup")
            floor = []
            for _ in range(len(series)):
                t0 = time.perf_counter()
                conn.request("GET", "/v1/models", headers={"X-API-Key": "bench-key"})
                conn.getresponse().read()
                floor.append((time.perf_counter() - t0) * 1000)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
    judged = np.array(seconds)[~np.array(warm)] * 1000
    p50, p99 = np.percentile(judged, [50, 99])
    f50, f99 = np.percentile(floor, [50, 99])
    return float(p50), float(p99), len(judged), float(f50), float(f99)


def _connect(port: int, proc) -> object:
    import http.client

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the service exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/health")
            conn.getresponse().read()
            return conn
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the service did not start within 120 s")


def alert_events(verdicts: pd.DataFrame, windows) -> list[str]:
    """One line per run of flags: its span, direction, first count against the expectation, and where it
    falls: inside a labelled window (with the delay from the window start), or a false alarm with the gap to
    the nearest window (a run that ends just before a window or starts just after one would be a timing
    problem rather than a detection problem); ``no data`` marks runs opened by a count of exactly 0."""
    flagged = verdicts["flagged"].to_numpy()
    starts = np.flatnonzero(flagged & ~np.r_[False, flagged[:-1]])
    ends = np.flatnonzero(flagged & ~np.r_[flagged[1:], False])
    spans = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows]
    lines = []
    for a, b in zip(starts, ends, strict=True):
        first, t0, t1 = verdicts.iloc[a], verdicts["ds"].iloc[a], verdicts["ds"].iloc[b]
        hit = [(ws, we) for ws, we in spans if t1 >= ws and t0 <= we]
        if hit:
            where = f"in window {hit[0][0]:%m-%d %H:%M}, {max(t0, hit[0][0]) - hit[0][0]} after its start"
        else:
            gap = min(min(abs(ws - t1), abs(t0 - we)) for ws, we in spans) if spans else pd.NaT
            where = f"false alarm, {gap} from the nearest window"
        outage = "  no data" if "no data" in str(first["reason"]) else ""
        lines.append(
            f"    {t0:%Y-%m-%d %H:%M}..{t1:%m-%d %H:%M} {first['direction']:<5} {b - a + 1:>4} points, "
            f"{first['y']:,.0f} vs {first['expected']:,.0f} expected: {where}{outage}"
        )
    return lines


def leave_one_series_out(source: Path, windows: dict, also: dict[str, list] | None = None) -> None:
    """Do the detector's design choices generalise? For each series, pick the choices (time-of-week profile,
    warm-up, short time scale, and any ``also`` parameter's values) that score best on the other five, and
    score them on it: the held-out total."""
    grid = [
        {"time_of_week": tow, "warmup": warm, "short": short}
        for tow in (True, False)
        for warm in ("auto", "8d")
        for short in ("1h", "3h")
    ]
    for param, values in (also or {}).items():
        grid = [{**choice, param: value} for choice in grid for value in values]
    scores = {}
    for name, freq in FILES.items():
        series = load(source, name)
        for k, choice in enumerate(grid):
            v = VolumeDetector(freq=freq, **choice).detect(series, include_warmup=True)
            scores[k, name] = event_score(v["ds"], v["flagged"], windows[name])

    def pooled(k: int, names) -> EventScore:
        return sum((scores[k, n] for n in names), EventScore(0, 0, 0))

    for k, choice in enumerate(grid):
        print(f"  {choice}: all six {pooled(k, FILES)} F1 {pooled(k, FILES).f1:.3f}")
    held = EventScore(0, 0, 0)
    for name in FILES:
        best = max(range(len(grid)), key=lambda k: pooled(k, [n for n in FILES if n != name]).f1)
        held += scores[best, name]
        print(f"  held out {name:<26} chosen on the other five: {grid[best]}  ->  {scores[best, name]}")
    print(
        f"leave-one-series-out: windows detected {held.detected}/{held.windows}, false alarms "
        f"{held.false_alarms}, F1 {held.f1:.3f}"
    )


def _choice(text: str) -> tuple[str, list]:
    """``threshold=0.99999,0.999999`` -> ("threshold", [0.99999, 0.999999]) (numbers, true/false, none,
    else the string); an unknown parameter name exits with the known ones."""
    name, _, values = text.partition("=")
    known = VolumeDetector().get_params()
    if name not in known or not values:
        sys.exit(f"--loso-also wants PARAM=V1,V2 with PARAM one of {sorted(known)}; got {text!r}.")

    def parse(value: str) -> object:
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "none":
            return None
        try:
            return float(value)
        except ValueError:
            return value.strip()

    return name, [parse(v) for v in values.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="default: ../shared/data/nab")
    parser.add_argument("--warmup", default="auto", help="default: the detector's (auto: 2 days at 5/30 min)")
    parser.add_argument("--latency", type=int, default=3000, help="points posted one by one (0: skip)")
    parser.add_argument("--loso", action="store_true", help="also leave-one-series-out over design choices")
    parser.add_argument("--events", action="store_true", help="also list every alert event and its timing")
    parser.add_argument(
        "--loso-also",
        action="append",
        default=[],
        metavar="PARAM=V1,V2",
        help="with --loso: also choose this VolumeDetector parameter among these values (repeatable), "
        "e.g. threshold=0.99999,0.999999",
    )
    args = parser.parse_args()
    args.source = args.source or shared_data("nab")
    windows = json.loads((args.source / "windows.json").read_text())
    totals = {"orderpulse": EventScore(0, 0, 0), "rolling_z": EventScore(0, 0, 0)}
    points, seconds, rows, events = 0, 0.0, [], {}
    VolumeDetector(freq="5min", warmup="1h").detect(
        load(args.source, "Twitter_volume_IBM.csv").head(50)
    )  # JIT
    for name, freq in FILES.items():
        series = load(args.source, name)
        t0 = time.perf_counter()
        verdicts = (detector := VolumeDetector(freq=freq, warmup=args.warmup)).detect(
            series, include_warmup=True
        )
        seconds += time.perf_counter() - t0
        points += len(series)
        ours = event_score(verdicts["ds"], verdicts["flagged"], windows[name])
        base = event_score(series["ds"], rolling_z(series, freq, detector.warmup_duration()), windows[name])
        totals["orderpulse"] += ours
        totals["rolling_z"] += base
        opened = verdicts["reason"].str.contains("similar|first")
        no_data = int((opened & verdicts["reason"].str.contains("no data")).sum())
        rows.append((name, freq, ours, base, int(opened.sum()), no_data))
        if args.events:
            events[name] = alert_events(verdicts, windows[name])
    print(
        f"{'series':<26}{'freq':>6}  {'orderpulse det/win FA':>22}  {'rolling_z det/win FA':>21}  alerts"
        "  (no data)"
    )
    for name, freq, ours, base, alerts, no_data in rows:
        print(
            f"{name:<26}{freq:>6}  {ours.detected:>9}/{ours.windows:<3}{ours.false_alarms:>9}  "
            f"{base.detected:>9}/{base.windows:<3}{base.false_alarms:>8}  {alerts:>6}  ({no_data})"
        )
        for line in events.get(name, []):
            print(line)
    for label, s in totals.items():
        print(
            f"{label:<11} windows detected {s.detected}/{s.windows}, false alarms {s.false_alarms}, "
            f"precision {s.precision:.3f}, recall {s.recall:.3f}, F1 {s.f1:.3f}"
        )
    if args.loso:
        leave_one_series_out(args.source, windows, dict(_choice(text) for text in args.loso_also))
    if args.latency:
        p50, p99, n, f50, f99 = verdict_latency(
            load(args.source, "Twitter_volume_IBM.csv").head(args.latency)
        )
        print(
            f"verdict through POST /v1/actuals (one point per request, {n} after warm-up): p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms (GET /v1/models on the same server: p50 {f50:.2f} ms, p99 {f99:.2f} ms)"
        )
    print(
        f"batch detection: {points} points in {seconds:.2f} s = {points / seconds:,.0f} points/s (numba compiled beforehand; reasons included)"
    )


if __name__ == "__main__":
    main()
