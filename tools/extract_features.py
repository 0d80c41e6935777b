"""`python tools/extract_features.py` = `show-attend extract`: see `show-attend extract --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("extract"))
