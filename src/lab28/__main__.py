"""`python -m lab28 ...`: the same command line as the `lab28` console script (useful where it is not installed)."""

import sys

from lab28.cli import main

sys.exit(main())
