"""Thin wrapper: see `python tools/results_table.py --help` and show_attend.cli.results_table_main."""
import sys

from show_attend.cli import results_table_main

if __name__ == "__main__":
    sys.exit(results_table_main())
