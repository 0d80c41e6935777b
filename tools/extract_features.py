"""Thin wrapper: see `python tools/extract_features.py --help` and show_attend.cli.extract_main."""
import sys
from pathlib import Path

from show_attend.cli import extract_main

if __name__ == "__main__":
    sys.exit(extract_main(default_config=Path(__file__).resolve().parent.parent / "configs" / "shapes_demo.yaml"))
