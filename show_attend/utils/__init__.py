"""Helpers every stage shares, each in one place: atomic file writes (``files``), markdown tables
(``markdown``), and seeding, device choice, run folders and ``eval_mode`` (``runtime``, needs torch).

Nothing here imports the rest of the package, so any module may use it.
"""
