"""``python -m mmbalance.cli``: the ``mmbalance`` command."""

import sys

from mmbalance.cli import main

if __name__ == "__main__":
    sys.exit(main())
