"""Shared helpers for the benchmarks: wall time and peak memory of a block, and where the full datasets are.

Peak memory is the process's resident set size sampled every 20 ms by a thread (psutil), minus the RSS at the
start of the block: it includes what LightGBM and numpy allocate in C, which ``tracemalloc`` would miss.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["Measured", "measure", "shared_data", "mlforecast_output", "REPO"]


@dataclass
class Measured:
    seconds: float = 0.0
    peak_mb: float = 0.0
    baseline_mb: float = 0.0


class measure:  # noqa: N801 - used as a context manager, reads like a function
    """``with measure() as m: ...`` then ``m.seconds`` and ``m.peak_mb`` (peak RSS above the start).

    ``pid``: watch that process and its children instead of this one (a peer run in its own virtual
    environment); its RSS stops counting when it ends.
    """

    def __init__(self, interval: float = 0.02, pid: int | None = None):
        self.interval = interval
        self.result = Measured()
        self._proc = psutil.Process(os.getpid() if pid is None else pid)
        self._tree = pid is not None
        self._stop = threading.Event()
        self._peak = 0

    def _rss(self) -> int:
        try:
            procs = [self._proc, *(self._proc.children(recursive=True) if self._tree else ())]
            return sum(p.memory_info().rss for p in procs if p.is_running())
        except psutil.Error:  # the watched process ended between two samples
            return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> Measured:
        base = self._rss()
        self._peak = base
        self.result.baseline_mb = base / 2**20
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self.result

    def __exit__(self, *exc: object) -> None:
        self.result.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        self.result.peak_mb = self._peak / 2**20 - self.result.baseline_mb


def shared_data(sub: str = "") -> Path:
    """``../shared/data/<sub>`` (or ``$ORDERPULSE_SHARED_DATA``); exits with a clear message when absent."""
    root = Path(os.environ.get("ORDERPULSE_SHARED_DATA", REPO.parent / "shared" / "data"))
    path = root / sub
    if not path.exists():
        sys.exit(f"{path} not found: the benchmarks need the full datasets (set ORDERPULSE_SHARED_DATA).")
    return path


def mlforecast_output(pred, levels: tuple[int, ...]):
    """An mlforecast ``predict`` frame (model ``lgbm``) in OrderPulse's columns: ``series_id, ds, yhat,
    yhat_lo_<L>, yhat_hi_<L>``, clipped at 0 (demand is never negative)."""
    names = {"unique_id": "series_id", "lgbm": "yhat"}
    for lv in levels:
        names |= {f"lgbm-lo-{lv}": f"yhat_lo_{lv}", f"lgbm-hi-{lv}": f"yhat_hi_{lv}"}
    out = pred.rename(columns=names)
    cols = [c for c in names.values() if c != "series_id"]
    out[cols] = out[cols].clip(lower=0)
    return out.assign(series_id=out["series_id"].astype("string"))
