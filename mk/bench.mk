# `make bench`: seed baseline vs Chirp (gunicorn, durable PostgreSQL, Redis),
# direct and behind nginx, vs the framework ceiling, with wrk. See bench/README.md.

$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

# nginx is only run by the bench, on its own port and config: the package's
# own service is stopped and disabled again after installing it.
BENCH_APT := $(if $(shell command -v wrk),,wrk) $(if $(wildcard /usr/sbin/nginx)$(shell command -v nginx),,nginx-light)

bench-deps: $(VENV)/.bench-installed ## Install the benchmark's dependencies (wrk, nginx, matplotlib, py-spy)
	@if [ -n "$(strip $(BENCH_APT))" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q $(BENCH_APT) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q $(BENCH_APT); }; \
	    service nginx stop >/dev/null 2>&1; update-rc.d nginx disable >/dev/null 2>&1; true; \
	  else echo "missing and not root: apt-get install $(strip $(BENCH_APT))"; exit 1; fi; fi

bench: bench-deps ## Benchmark: seed vs Chirp vs ceiling, scale curve; writes bench/results/
	$(PY) bench/run.py

.PHONY: bench bench-deps
