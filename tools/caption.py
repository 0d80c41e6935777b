"""`python tools/caption.py` = `show-attend caption`: see `show-attend caption --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("caption"))
