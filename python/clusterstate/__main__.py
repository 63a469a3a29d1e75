"""``python -m clusterstate``: the ``clusterstate`` command."""

import sys

from clusterstate.cli import main

sys.exit(main())
