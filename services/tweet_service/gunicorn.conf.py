# Gunicorn settings for the tweet service: `gunicorn -c services/tweet_service/gunicorn.conf.py`
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `services/` folder

from common.gunicorn_settings import *  # noqa: E402,F401,F403
from common.gunicorn_settings import bind_address  # noqa: E402

# Twice the user service's threads: a POST spends most of its time waiting,
# on the user service and then on the commit, and author checks that wait
# together share one batch call. More threads than that contend for the GIL
# (bench/README.md has the measurements).
threads = int(os.environ.get("GUNICORN_THREADS", 8))

wsgi_app = "tweet_service.wsgi:app"
bind = bind_address(default_port=5002)
