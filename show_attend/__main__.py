"""``python -m show_attend``: the ``show-attend`` command."""
import sys

from .cli import main

sys.exit(main())
