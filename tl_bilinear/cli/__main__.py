"""``python -m tl_bilinear.cli`` (what ``torchrun ... -m tl_bilinear.cli train`` runs)."""

import sys

from tl_bilinear.cli import main

sys.exit(main())
