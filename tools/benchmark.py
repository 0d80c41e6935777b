"""`python tools/benchmark.py` = `show-attend benchmark`: see `show-attend benchmark --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("benchmark"))
