"""Small shared helpers: atomic file writes, matplotlib figures, the files users name (reading YAML with
one-line errors, checking output places before any work), lock files shared by processes and machines
(locks.py), a compact live terminal view (live_view.py), and keeping ultralytics offline from ``import cawb`` on
(network.py; it touches only ultralytics modules already imported, never imports them), ultralytics' own places
(ultralytics_places.py: its datasets_dir and runs_dir settings, the dataset yamls it ships), and SIGTERM handled as
Ctrl-C (signals.py).

The lowest layer: these modules import nothing from the rest of ``cawb``, so every other part may use them.
"""
