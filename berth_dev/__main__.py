"""python -m berth_dev: what `make run` runs."""

import sys

from berth_dev.devrun import main

sys.exit(main())
