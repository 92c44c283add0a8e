"""Keeping ultralytics off the network from ``import cawb`` on, whichever of the two was imported first.

ultralytics decides once, when ``ultralytics.utils`` is first imported, whether it is online: it reads
``YOLO_OFFLINE`` (else asks DNS) into ``ultralytics.utils.ONLINE``, which ``ultralytics.utils.checks`` and
``ultralytics.utils.events`` copy at their own import, and its usage-analytics object computes ``enabled`` from
it. Setting the variable after that changes nothing, so :func:`keep_ultralytics_offline` also switches those
copies off when ultralytics is already loaded. It imports nothing of ultralytics itself (``import cawb`` stays
light): it only touches modules already in ``sys.modules``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["OFFLINE_VARIABLE", "keep_ultralytics_offline"]

#: The environment variable ultralytics reads (``"1"``: offline).
OFFLINE_VARIABLE = "YOLO_OFFLINE"
# ultralytics' env_bool: these values (case-insensitive, trimmed) are true
_TRUE = {"1", "true", "yes", "on", "y", "t"}
# modules that hold their own copy of ultralytics.utils.ONLINE, taken when they were imported
_ONLINE_HOLDERS = ("ultralytics.utils", "ultralytics.utils.checks", "ultralytics.utils.events")


def keep_ultralytics_offline() -> bool:
    """Set ``YOLO_OFFLINE=1`` unless the environment sets it, and, when it is on and ultralytics is already
    imported, switch its cached online flags (and its analytics) off. Returns whether ultralytics is kept offline
    (False only when the user set ``YOLO_OFFLINE`` to a false value)."""
    os.environ.setdefault(OFFLINE_VARIABLE, "1")
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
