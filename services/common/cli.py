"""`python -m <service> upgrade`: the command `make migrate`, the images and
the pods' migrate init container run."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from . import migrations
from .settings import default_database_url


def main(service: str, migrations_dir: Path, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {service}")
    commands = parser.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser(
        "upgrade", help="apply database migrations up to the latest (DATABASE_URL); "
                        "safe to run from many processes at once")
    upgrade.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                         help="wait this long for the database to accept connections (default 0)")
    args = parser.parse_args(argv)
    if args.command == "upgrade":
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        url = os.environ.get("DATABASE_URL") or default_database_url(service)
        before, after = migrations.upgrade(migrations_dir, url, service=service,
                                           wait_seconds=args.wait)
        if before == after:
            print(f"{service}: database already at revision {after}")
        else:
            print(f"{service}: database migrated from revision {before or 'none'} to {after}")
    return 0
