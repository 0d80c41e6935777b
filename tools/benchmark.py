"""Thin wrapper: see `python tools/benchmark.py --help` and show_attend.cli.benchmark_main."""
import sys

from show_attend.cli import benchmark_main

if __name__ == "__main__":
    sys.exit(benchmark_main())
