# Gunicorn settings for the tweet service: `gunicorn -c services/tweet_service/gunicorn.conf.py`
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `services/` folder

from common.gunicorn_settings import *  # noqa: E402,F401,F403
from common.gunicorn_settings import bind_address  # noqa: E402

# Twice the user service's threads: a POST spends most of its time waiting,
# on the user service and then on the commit, and author checks that wait
# together share one batch call. Measured on 2 cores: 8 threads a worker
# serve about a quarter more POSTs than 4; 10 and 12 raise the p99
# (bench/README.md: the sweep).
threads = int(os.environ.get("GUNICORN_THREADS", 8))

wsgi_app = "tweet_service.wsgi:app"
bind = bind_address(default_port=5002)
