"""Helpers every stage shares, each in one place.

    files.py     atomic writes (text, JSON, any writer), strict JSON
    markdown.py  markdown tables
    runtime.py   seeding, device choice, run folders, eval_mode (needs torch)

Nothing here imports the rest of the package, so any module may use it.
"""
