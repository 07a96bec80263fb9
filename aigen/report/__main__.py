import sys

from aigen.report.cli import main

sys.exit(main())
