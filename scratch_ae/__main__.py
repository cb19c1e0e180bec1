"""`python -m scratch_ae` is the `scratch-ae` command."""
import sys

from .cli import main

sys.exit(main())
