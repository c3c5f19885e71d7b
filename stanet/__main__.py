import sys

from stanet.cli import main

sys.exit(main())
