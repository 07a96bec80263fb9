import sys

from aigen.export.cli import main

sys.exit(main())
