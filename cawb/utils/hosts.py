"""Which machine this is and whether a process on it still runs: how a file left by a process (a lock, a
temporary file, a tuner trial's record) is told to be its dead writer's.

A process id names a process on its own host only; a record made on another host cannot be checked here (its
readers wait for a timeout or a heartbeat instead).
"""

from __future__ import annotations

import os
import socket

__all__ = ["pid_alive", "this_host"]


def this_host() -> str:
    """The name records (locks, tuner trials) keep for this machine."""
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (one owned by another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
