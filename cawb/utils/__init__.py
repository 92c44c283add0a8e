"""Small shared helpers: atomic file writes, matplotlib figures, and the files users name (reading YAML with
one-line errors, checking output places before any work).

The lowest layer: these modules import nothing from the rest of ``cawb``, so every other part may use them.
"""
