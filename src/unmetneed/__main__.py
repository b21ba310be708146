"""``python -m unmetneed`` is the ``unmetneed`` command."""

import sys

from unmetneed.cli import main

sys.exit(main())
