"""The package version (one place: setup.py, the reports and ``show-attend --version`` read it)."""
__version__ = "0.1.0"
