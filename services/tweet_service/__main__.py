import sys

from common.cli import main

from . import MIGRATIONS

sys.exit(main("tweet_service", MIGRATIONS))
