# Gunicorn settings for the tweet service: `gunicorn -c services/tweet_service/gunicorn.conf.py`
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `services/` folder

from common.gunicorn_settings import *  # noqa: E402,F401,F403
from common.gunicorn_settings import bind_address  # noqa: E402

wsgi_app = "tweet_service.wsgi:app"
bind = bind_address(default_port=5002)
