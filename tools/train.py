"""Thin wrapper: see `python tools/train.py --help` and show_attend.cli.train_main."""
import sys
from pathlib import Path

from show_attend.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main(default_config=Path(__file__).resolve().parent.parent / "configs" / "shapes_demo.yaml"))
