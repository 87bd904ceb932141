# Chirp: developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)/services

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/runtime.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv with all dependencies

migrate: venv ## Migrate every service's database (DATABASE_URL per service; see `run`)
	DATABASE_URL=$(USER_DATABASE_URL) $(PY) -m user_service upgrade
	DATABASE_URL=$(TWEET_DATABASE_URL) $(PY) -m tweet_service upgrade
	DATABASE_URL=$(FEED_DATABASE_URL) $(PY) -m feed_service upgrade

# `make dev`: the try-it-now path. SQLite files under .data/, no Redis, the
# services on Flask's development server (it does not reload: restart it
# after a change); Ctrl-C stops them all.
dev: venv ## Run the services locally on :5001, :5002 and :5003 (SQLite, no Redis)
	$(PY) -m user_service upgrade
	$(PY) -m tweet_service upgrade
	$(PY) -m feed_service upgrade
	trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	$(PY) -m flask --app user_service.wsgi run --host 127.0.0.1 --port 5001 & \
	$(PY) -m flask --app tweet_service.wsgi run --host 127.0.0.1 --port 5002 & \
	$(PY) -m flask --app feed_service.wsgi run --host 127.0.0.1 --port 5003 & \
	wait

# `make run`: production settings (gunicorn) against the databases and Redis
# named in the environment, migrating first.
USER_PORT ?= 5001
TWEET_PORT ?= 5002
FEED_PORT ?= 5003
run: venv ## Run them under gunicorn: USER_/TWEET_/FEED_DATABASE_URL, REDIS_URL
	@test -n "$(USER_DATABASE_URL)" -a -n "$(TWEET_DATABASE_URL)" -a -n "$(FEED_DATABASE_URL)" || \
		{ echo "set USER_DATABASE_URL, TWEET_DATABASE_URL and FEED_DATABASE_URL (and REDIS_URL)"; exit 2; }
	$(MAKE) --no-print-directory migrate
	trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	PORT=$(USER_PORT) DATABASE_URL=$(USER_DATABASE_URL) \
		$(VENV)/bin/gunicorn -c services/user_service/gunicorn.conf.py & \
	PORT=$(TWEET_PORT) DATABASE_URL=$(TWEET_DATABASE_URL) USER_SERVICE_URL=http://127.0.0.1:$(USER_PORT) \
		$(VENV)/bin/gunicorn -c services/tweet_service/gunicorn.conf.py & \
	PORT=$(FEED_PORT) DATABASE_URL=$(FEED_DATABASE_URL) USER_SERVICE_URL=http://127.0.0.1:$(USER_PORT) \
		TWEET_SERVICE_URL=http://127.0.0.1:$(TWEET_PORT) \
		$(VENV)/bin/gunicorn -c services/feed_service/gunicorn.conf.py & \
	wait

# The quick suites; images, k8s and faults have their own targets (below, mk/).
TEST_PATHS := tests/test_support.py tests/test_gunicorn_settings.py tests/migrations tests/contract

test: venv ## Run the test suite (real PostgreSQL and Redis, started by the fixtures)
	$(PY) -m pytest -q -m "not slow" $(TEST_PATHS)

clean: ## Remove the virtualenv, local data and caches
	rm -rf $(VENV) .data .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: help venv clean migrate dev run test

include $(wildcard mk/*.mk)
