"""Pictures: what attention does and how training went.

    attention.py  Figure-3 heatmaps over each generated word (PNG/PDF/SVG, animated GIF)
    gallery.py    heatmaps for image files or a dataset split, with an HTML page
    curves.py     training curves from a run's history.jsonl
"""
