"""``python -m service.cli``: the same as the ``reportqa`` command."""
import sys

from service.cli import main

sys.exit(main())
