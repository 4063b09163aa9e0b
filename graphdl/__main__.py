"""``python -m graphdl`` runs the command line."""

import sys

from graphdl.cli import main

sys.exit(main())
