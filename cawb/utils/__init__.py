"""Small shared helpers: atomic file writes and matplotlib figures.

The lowest layer: these modules import nothing from the rest of ``cawb``, so every other part may use them.
"""
