"""serving/periodic.py: the background thread behind periodic model reloads and history polling."""

import logging
import threading

from serving.periodic import PeriodicThread


def test_ticks_repeat_survive_an_exception_and_stop_joins_the_thread(caplog):
    ticks: list[int] = []
    third = threading.Event()

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise RuntimeError("first tick fails")
        if len(ticks) >= 3:
            third.set()

    thread = PeriodicThread("test-periodic", tick, "tick failed", logging.getLogger("test.periodic"))
    with caplog.at_level(logging.ERROR, logger="test.periodic"):
        thread.start(0.01)
        thread.start(0.01)  # already running: ignored
        assert third.wait(10)
        thread.stop()
    assert not thread.running
    assert len(ticks) >= 3  # the failing first tick did not end the loop
    assert [r.getMessage() for r in caplog.records][:1] == ["tick failed"]
    assert "first tick fails" in caplog.text
    done = len(ticks)
    third.clear()
    assert not third.wait(0.1) and len(ticks) == done  # stopped: no more ticks


def test_a_non_positive_interval_never_starts_a_thread():
    thread = PeriodicThread("never", lambda: None, "x", logging.getLogger("test.periodic"))
    thread.start(0)
    assert not thread.running
    thread.stop()  # stopping a thread that never started is fine
