"""`python -m kshot.cli ...` is the `kshot` command."""

import sys

from . import main

sys.exit(main())
