"""`python -m <service> upgrade`: the command images and Helm hooks run."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import migrations
from .config import default_database_url


def main(service: str, migrations_dir: Path, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {service}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade", help="apply database migrations up to the latest (DATABASE_URL)")
    args = parser.parse_args(argv)
    if args.command == "upgrade":
        url = os.environ.get("DATABASE_URL") or default_database_url(service)
        migrations.upgrade(migrations_dir, url)
        print(f"{service}: database migrated to the latest revision")
    return 0
