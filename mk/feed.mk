# `make bench-feed`: the feed service's benchmark (bench/feed_bench.py,
# results in bench/results/feed.md). Same tools as `make bench`.

bench-feed: bench-deps ## Benchmark the feed: timelines fan-out vs read-time merge, fan-out lag, mixed load
	$(PY) bench/feed_bench.py

.PHONY: bench-feed
