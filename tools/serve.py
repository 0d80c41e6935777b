"""`python tools/serve.py` = `show-attend serve`: see `show-attend serve --help`."""
import sys

from show_attend.cli import run

if __name__ == "__main__":
    sys.exit(run("serve"))
