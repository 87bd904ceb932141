"""Alembic environment for the tweet service's own database."""
from common.migrations import run_env
from tweet_service.models import Base

run_env(Base.metadata)
