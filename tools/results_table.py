"""`python tools/results_table.py` = `show-attend results`: see `show-attend results --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("results"))
