# Gunicorn settings for the user service: `gunicorn -c services/user_service/gunicorn.conf.py`
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the `services/` folder

from common.gunicorn_settings import *  # noqa: E402,F401,F403
from common.gunicorn_settings import bind_address  # noqa: E402

wsgi_app = "user_service.wsgi:app"
bind = bind_address(default_port=5001)
