"""Thin wrapper: see `python tools/evaluate.py --help` and show_attend.cli.evaluate_main."""
import sys

from show_attend.cli import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
