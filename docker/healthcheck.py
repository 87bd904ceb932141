"""Container HEALTHCHECK: exit 0 when GET /healthz on this container's port
answers 200, 1 otherwise. Needs nothing but the Python standard library."""
import os
import sys
import urllib.request

host = os.environ.get("HOST", "")
if host in ("", "0.0.0.0", "::", "[::]"):
    host = "127.0.0.1"
if ":" in host and not host.startswith("["):
    host = f"[{host}]"
port = os.environ.get("PORT") or "5001"
# Never through a proxy, whatever the environment says.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(f"http://{host}:{port}/healthz", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy"
    print(f"healthcheck: {exc}", file=sys.stderr)
    sys.exit(1)
