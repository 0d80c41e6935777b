"""Thin wrapper: see `python tools/visualize_attention.py --help` and show_attend.cli.visualize_main."""
import sys

from show_attend.cli import visualize_main

if __name__ == "__main__":
    sys.exit(visualize_main())
