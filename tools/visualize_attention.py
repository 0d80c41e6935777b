"""`python tools/visualize_attention.py` = `show-attend visualize`: see `show-attend visualize --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("visualize"))
