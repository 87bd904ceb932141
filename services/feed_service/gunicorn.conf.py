# Gunicorn settings for the feed service: `gunicorn -c services/feed_service/gunicorn.conf.py`
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `services/` folder

from common.gunicorn_settings import *  # noqa: E402,F401,F403
from common.gunicorn_settings import bind_address  # noqa: E402

# A timeline read spends most of its time waiting on Redis and the tweet
# service, as a POST /tweets waits on the user service: the same 8 threads.
threads = int(os.environ.get("GUNICORN_THREADS", 8))

wsgi_app = "feed_service.wsgi:app"
bind = bind_address(default_port=5003)
