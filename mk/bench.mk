# `make bench`: seed baseline vs Chirp (gunicorn, durable PostgreSQL, Redis) vs
# the framework ceiling, with wrk. See bench/README.md.

$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

bench-deps: $(VENV)/.bench-installed ## Install the benchmark's dependencies (wrk, matplotlib, py-spy)
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }; \
	  else echo "wrk missing and not root: install it (apt-get install wrk)"; fi; }

bench: bench-deps ## Benchmark: seed vs Chirp vs ceiling, scale curve; writes bench/results/
	$(PY) bench/run.py

.PHONY: bench bench-deps
