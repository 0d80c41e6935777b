"""`python tools/prepare_data.py` = `show-attend prepare`: see `show-attend prepare --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("prepare"))
