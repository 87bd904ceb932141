"""Alembic environment for the user service's own database."""
from common.migrations import run_env
from user_service.models import Base

run_env(Base.metadata)
