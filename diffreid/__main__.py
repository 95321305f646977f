"""`python -m diffreid`: the CLI, for launchers (`accelerate launch -m diffreid`, `torchrun -m diffreid`)."""

import sys

from diffreid.cli import main

sys.exit(main())
