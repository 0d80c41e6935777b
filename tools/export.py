"""`python tools/export.py` = `show-attend export`: see `show-attend export --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("export"))
