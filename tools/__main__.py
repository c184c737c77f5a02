"""`python -m tools <command>`: the repository's command line (tools/cli/)."""

import sys

from tools.cli import main

sys.exit(main())
