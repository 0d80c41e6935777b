"""Stage 5, judging a checkpoint: decode a split, score it, write the report.

    evaluate.py   evaluate_checkpoint: restore -> decode -> score (show_attend.metrics) -> report
    report.py     the files an evaluation writes (COCO results, metrics.json, report.md, samples.txt)
    grounding.py  does the model look where it speaks? (object boxes of the synthetic shapes)
    tables.py     results tables from evaluation folders or run histories
"""
