"""Small shared helpers: atomic and durable file writes, this host and its live processes (hosts.py), matplotlib
figures, the files users name (reading YAML with one-line errors, checking output places before any work), lock
files shared by processes and machines (locks.py), a compact live terminal view (live_view.py), SIGTERM handled as
Ctrl-C (signals.py), and ultralytics_compat/: every contact with ultralytics' internals, for the supported range
of its releases (it imports ultralytics inside functions only; keeping it offline touches only modules already
imported).

The lowest layer: these modules import nothing from the rest of ``cawb``, so every other part may use them.
"""
