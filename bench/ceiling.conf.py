# The ceiling app under exactly the services' gunicorn settings.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common.gunicorn_settings import *  # noqa: E402,F401,F403
from common.gunicorn_settings import server_settings  # noqa: E402
from common.settings import ServerSettings  # noqa: E402

globals().update(server_settings(ServerSettings()))
wsgi_app = "ceiling:app"
