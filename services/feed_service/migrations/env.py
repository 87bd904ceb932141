"""Alembic environment for the feed service's own database."""
from common.migrations import run_env
from feed_service.models import Base

run_env(Base.metadata)
