"""``python -m dorkstore``: the command line."""

import sys

from dorkstore.cli import main

sys.exit(main())
