"""Thin wrapper: see `python tools/caption.py --help` and show_attend.cli.caption_main."""
import sys

from show_attend.cli import caption_main

if __name__ == "__main__":
    sys.exit(caption_main())
