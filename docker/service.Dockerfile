# One Dockerfile for every Chirp service. Build from the repository root:
#
#   docker build -f docker/service.Dockerfile \
#     --build-arg SERVICE=user_service --build-arg PORT=5001 -t chirp/user-service:dev .
#
# (`make images` does this for each service.) SERVICE is the Python package
# (user_service | tweet_service | feed_service) and PORT its default listen port.
#
# PYTHON_IMAGE is any Debian-like image with python3 and its venv module:
# the official slim image by default; the image harness (tests/images/)
# passes a base it builds locally with debootstrap. Both stages use the same
# base, so the venv's interpreter link is valid in the runtime stage.
ARG PYTHON_IMAGE=python:3.12-slim

# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The locked runtime dependencies, in a venv. This layer does not depend on
# SERVICE, so the second image of `make images` reuses it from the cache.
RUN python3 -m venv /opt/venv
COPY requirements/runtime.txt /tmp/runtime.txt
RUN /opt/venv/bin/python -m pip install --no-cache-dir -r /tmp/runtime.txt \
 && /opt/venv/bin/python -m pip uninstall --yes pip setuptools wheel \
 && rm /tmp/runtime.txt

ARG SERVICE
ARG PORT
RUN case "${SERVICE}" in user_service|tweet_service|feed_service) ;; \
      *) echo "build with --build-arg SERVICE=user_service|tweet_service|feed_service (got '${SERVICE}')" >&2; exit 1;; \
    esac \
 && case "${PORT}" in ''|*[!0-9]*) echo "build with --build-arg PORT=<number> (got '${PORT}')" >&2; exit 1;; esac

# The code: the shared package and this one service, nothing else.
COPY services/common /app/common
COPY services/${SERVICE} /app/${SERVICE}
COPY docker/healthcheck.py /app/healthcheck.py
# A fixed path for the gunicorn config (exec-form CMD cannot expand SERVICE),
# and bytecode compiled now: the runtime filesystem is read-only.
RUN test -f "/app/${SERVICE}/gunicorn.conf.py" \
 && ln -s "${SERVICE}/gunicorn.conf.py" /app/gunicorn.conf.py \
 && /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app

# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG SERVICE
ARG PORT

# Root-owned and read-only for the service user. HOME and CHIRP_DATA_DIR
# (the SQLite fallback when DATABASE_URL is unset: a demo, not production)
# point at /tmp, the one writable place (tmpfs / emptyDir) at run time.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app

ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    CHIRP_DATA_DIR=/tmp/chirp-data \
    CHIRP_SERVICE=${SERVICE} \
    PORT=${PORT}

WORKDIR /app
USER 10001:10001
EXPOSE ${PORT}
STOPSIGNAL SIGTERM

# No curl/wget in the image: the venv's python asks /healthz on $PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/opt/venv/bin/python", "/app/healthcheck.py"]

# gunicorn is PID 1 (exec form, no shell, no ENTRYPOINT): SIGTERM reaches it
# and it drains in-flight requests within graceful_timeout. Any other command
# runs in its place, e.g. `docker run IMAGE python -m user_service upgrade`.
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py"]

# Last, so that a new version or commit only rewrites this metadata layer.
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="chirp-${SERVICE}" \
      org.opencontainers.image.description="Chirp ${SERVICE} (Flask, gunicorn)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
