"""Worker processes that die with their supervisor, so a crashed master never leaves the port taken.

uvicorn's supervisor (``orderpulse serve --workers N``) starts N worker processes that share the listening
socket. When the supervisor is killed with SIGKILL it cannot stop them: they would keep serving with PPID 1,
holding the port, and the next ``orderpulse serve`` would fail with "address already in use". Each worker
therefore asks Linux for a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``) as it builds its app:
when the supervisor dies, the kernel sends the worker SIGTERM and uvicorn shuts it down (in-flight requests
finish). The supervisor's pid travels in ``ORDERPULSE_SUPERVISOR_PID``; a worker whose parent is already gone
when it asks exits at once. Elsewhere than Linux this is a no-op (logged once).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

__all__ = ["SUPERVISOR_PID_ENV", "die_with_supervisor"]

SUPERVISOR_PID_ENV = "ORDERPULSE_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1
_log = logging.getLogger("orderpulse.serving")


def die_with_supervisor() -> bool:
    """In a worker started by ``orderpulse serve --workers N``: get SIGTERM when the supervisor dies.

    Returns True when the signal is armed; False outside a supervised worker or where prctl is missing.
    """
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    if not expected or not expected.isdigit() or int(expected) == os.getpid():
        return False
    if not sys.platform.startswith("linux"):
        _log.warning("workers cannot follow their supervisor's death on %s: stop them by hand", sys.platform)
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        _log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d)", ctypes.get_errno())
        return False
    if os.getppid() != int(expected):  # the supervisor died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
    return True
