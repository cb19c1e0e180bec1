"""`python -m scratch_ae.cli` is the `scratch-ae` command (as is `python -m scratch_ae`)."""
import sys

from . import main

sys.exit(main())
