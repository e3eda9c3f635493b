"""python -m berth_cli: the `berth` command."""

import sys

from berth_cli._main import main

sys.exit(main())
