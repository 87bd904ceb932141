# Gunicorn settings for the feed service: `gunicorn -c services/feed_service/gunicorn.conf.py`
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `services/` folder

# First: it sets up the metrics directory before the app (and prometheus_client) loads.
from common.gunicorn_settings import *  # noqa: E402,F401,F403
from common.gunicorn_settings import server_settings  # noqa: E402
from feed_service.settings import get_settings  # noqa: E402

# The settings object the app reads too (preload_app builds it in this process).
globals().update(server_settings(get_settings()))
wsgi_app = "feed_service.wsgi:app"
