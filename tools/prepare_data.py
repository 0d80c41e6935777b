"""Thin wrapper: see `python tools/prepare_data.py --help` and show_attend.cli.prepare_main."""
import sys
from pathlib import Path

from show_attend.cli import prepare_main

if __name__ == "__main__":
    sys.exit(prepare_main(default_config=Path(__file__).resolve().parent.parent / "configs" / "shapes_demo.yaml"))
