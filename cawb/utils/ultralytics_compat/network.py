"""ultralytics kept offline: its offline variable and the online flags it caches at import."""

from __future__ import annotations

import os
import sys

#: The environment variable ultralytics reads to stay offline.
OFFLINE_VARIABLE = "YOLO_OFFLINE"
#: The value cawb sets (every supported release reads the variable with its env_bool: 1, true, yes, on, ...).
_OFFLINE_VALUE = "1"
# values ultralytics' env_bool reads as true (case-insensitive, trimmed)
_TRUE = {"1", "true", "yes", "on", "y", "t"}
# modules that hold their own copy of ultralytics.utils.ONLINE, taken when they were imported
_ONLINE_HOLDERS = ("ultralytics.utils", "ultralytics.utils.checks", "ultralytics.utils.events")


def keep_ultralytics_offline() -> bool:
    """Set ``YOLO_OFFLINE`` unless the environment sets it, and, when it is on and ultralytics is already imported,
    switch the online flags it cached at its import (and its analytics) off. Imports nothing of ultralytics: it
    touches only modules already in ``sys.modules``. Returns whether ultralytics is kept offline (False only when
    the user set ``YOLO_OFFLINE`` to a false value)."""
    os.environ.setdefault(OFFLINE_VARIABLE, _OFFLINE_VALUE)
    if os.environ[OFFLINE_VARIABLE].strip().lower() not in _TRUE:
        return False
    for name in _ONLINE_HOLDERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ONLINE", False):
            module.ONLINE = False
    events = getattr(sys.modules.get("ultralytics.utils.events"), "events", None)
    if events is not None and getattr(events, "enabled", False):
        events.enabled = False
    return True


