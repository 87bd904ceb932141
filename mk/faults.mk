# Fault suite: both services under gunicorn on private PostgreSQL and Redis,
# with faults injected under load (tests/faults, docs/reliability.md).
# FAULTS_SUMMARY: where the summary table is written as Markdown.
FAULTS_SUMMARY ?= $(CURDIR)/.data/faults-summary.md

test-faults: venv ## Fault, bad-input and load scenarios (~5 min); prints a summary table
	FAULTS_SUMMARY=$(FAULTS_SUMMARY) $(PY) -m pytest tests/faults -m slow -q -p no:cacheprovider

.PHONY: test-faults
