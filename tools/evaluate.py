"""`python tools/evaluate.py` = `show-attend evaluate`: see `show-attend evaluate --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("evaluate"))
