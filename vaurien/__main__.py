"""``python -m vaurien``: the same as the ``vaurien`` command."""
import sys

from vaurien.run import main

if __name__ == '__main__':
    sys.exit(main())
