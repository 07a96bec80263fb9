import sys

from aigen.audit.cli import main

sys.exit(main())
