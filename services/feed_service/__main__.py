import sys

from common.cli import main

from . import MIGRATIONS

sys.exit(main("feed_service", MIGRATIONS))
