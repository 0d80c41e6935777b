"""`python tools/train.py` = `show-attend train`: see `show-attend train --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("train"))
