"""`make bench-feed`: the feed service in its shipped configuration.

1. GET /timelines/{id} of users who follow 20 accounts (timelines of 800
   entries), served from the Redis timelines (fan-out on write, the
   default) against the same service with FANOUT_ENABLED=false (every
   author merged at read time), at 32 connections.
2. Fan-out lag: how long after POST /tweets answers an author's 10,000
   followers all have the tweet in their cached timelines (p50, p99).
3. A mixed workload in DeathStarBench's proportions: 60 % home timelines,
   30 % a user's tweets, 10 % compose (POST /tweets), each request picked
   by weight in one wrk script, all through one entry point: nginx
   configured like the Ingress (`Proxy` in run.py).

Every service runs as `make run` runs it (gunicorn.conf.py defaults, the
chart's worker count), on durable PostgreSQL and Redis. Writes
bench/results/feed.md and feed.json. Knobs: BENCH_DURATION (s, default 10),
BENCH_WARMUP (3), BENCH_ROUNDS (3), BENCH_CONNECTIONS (32),
FEED_BENCH_LAG_SAMPLES (20).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent / "tests"), str(BENCH.parent / "services")]

import redis  # noqa: E402

from run import REPO, Proxy, gunicorn_settings, log, machine, median_of, wrk  # noqa: E402
from support.servers import PostgresServer, RedisServer, ServiceProcess, migrate  # noqa: E402

DURATION = int(os.environ.get("BENCH_DURATION", 10))
WARMUP = int(os.environ.get("BENCH_WARMUP", 3))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", 32))
LAG_SAMPLES = int(os.environ.get("FEED_BENCH_LAG_SAMPLES", 20))

AUTHORS = 200             # users 1..200 post; 40 tweets each
TWEETS_EACH = 40
READERS = 1000            # users 201..1200 follow 20 authors each: 800-entry timelines
FOLLOWS_EACH = 20
BIG_AUTHOR = READERS + AUTHORS + 1
BIG_FOLLOWERS = 10_000    # followers of BIG_AUTHOR (ids past every user: never read)
FIRST_FAN = 100_001


def timelines_lua(first: int, last: int) -> str:
    return f"""
function make_request()
  return wrk.format("GET", "/timelines/" .. math.random({first}, {last}))
end"""


# DeathStarBench socialNetwork's mix. Each request's X-Request-ID starts with
# its kind, which the services echo: bench/wrk.lua counts responses by kind.
MIX = {"timeline": ("home timeline: GET /timelines/{id}", 60),
       "tweets": ("a user's tweets: GET /tweets?user_id=", 30),
       "compose": ("compose: POST /tweets", 10)}
MIXED_LUA = f"""
by_kind = true
local headers = {{timeline = {{}}, tweets = {{}},
                 compose = {{["Content-Type"] = "application/json"}}}}
local sent = 0
local function tagged(kind)
  sent = sent + 1
  headers[kind]["X-Request-ID"] = kind .. "-" .. id .. "-" .. sent
  return headers[kind]
end
function make_request()
  local pick = math.random(100)
  if pick <= {MIX["timeline"][1]} then
    return wrk.format("GET", "/timelines/" .. math.random({AUTHORS + 1}, {AUTHORS + READERS}),
                      tagged("timeline"))
  elseif pick <= {MIX["timeline"][1] + MIX["tweets"][1]} then
    return wrk.format("GET", "/tweets?user_id=" .. math.random(1, {AUTHORS}), tagged("tweets"))
  end
  local body = '{{"user_id": ' .. math.random(1, {AUTHORS}) .. ', "content": "composed"}}'
  return wrk.format("POST", "/tweets", tagged("compose"), body)
end"""


def workers(service: str) -> int:
    """The worker count the service ships (its gunicorn.conf.py, the chart's default)."""
    return gunicorn_settings(REPO / "services" / service / "gunicorn.conf.py")["workers"]


class Feed:
    """PostgreSQL, Redis and the three services, plus a second feed service
    with fan-out off on the same database, and nginx in front of the three."""

    def __init__(self):
        self.pg = PostgresServer(durable=True, max_connections=400)
        self.redis = RedisServer()
        self.services: list[ServiceProcess] = []
        self.proxy: Proxy | None = None

    def sql(self, db: str, statements: str, rows: list[tuple] | None = None) -> None:
        conn = self.pg.connect(db)
        conn.autocommit = True
        with conn.cursor() as cur:
            if rows is None:
                cur.execute(statements)
            else:
                cur.executemany(statements, rows)
        conn.close()

    def start(self, tmpdir: Path) -> "Feed":
        self.pg.start()
        self.redis.start()
        dbs = {s: self.pg.create_database(f"bench_{s}")
               for s in ("user_service", "tweet_service", "feed_service")}
        for service, url in dbs.items():
            migrate(service, url)
        self.load()
        common: dict = {}
        self.users = self._start("user_service", {**common, "DATABASE_URL": dbs["user_service"],
                                                  "REDIS_URL": self.redis.url})
        self.feed = ServiceProcess("feed_service", workers=workers("feed_service"), env={
            **common, "DATABASE_URL": dbs["feed_service"], "REDIS_URL": self.redis.url,
            "USER_SERVICE_URL": self.users.url})
        self.tweets = self._start("tweet_service", {
            **common, "DATABASE_URL": dbs["tweet_service"], "USER_SERVICE_URL": self.users.url,
            "FEED_SERVICE_URL": self.feed.url})
        self.feed.env["TWEET_SERVICE_URL"] = self.tweets.url
        self.feed.start()
        self.services.append(self.feed)
        self.merged = self._start("feed_service", {
            **common, "DATABASE_URL": dbs["feed_service"], "REDIS_URL": self.redis.url,
            "FANOUT_ENABLED": "false", "USER_SERVICE_URL": self.users.url,
            "TWEET_SERVICE_URL": self.tweets.url})
        self.proxy = Proxy(tmpdir, {
            "/users": self.users.url, "/tweets": self.tweets.url,
            "/follows": self.feed.url, "/timelines": self.feed.url}).start()
        return self

    def _start(self, service: str, env: dict) -> ServiceProcess:
        process = ServiceProcess(service, workers=workers(service), env=env).start()
        self.services.append(process)
        return process

    def load(self) -> None:
        log("loading users, tweets and follows")
        self.sql("bench_user_service", f"""
            INSERT INTO users (name, handle, created_at)
            SELECT 'User ' || i, 'user' || i, now() FROM generate_series(1, {BIG_AUTHOR}) i;
            ANALYZE users;""")
        self.sql("bench_tweet_service", f"""
            INSERT INTO tweets (user_id, content, created_at)
            SELECT 1 + (i - 1) % {AUTHORS}, 'tweet number ' || i,
                   now() - make_interval(secs => {AUTHORS * TWEETS_EACH} - i)
            FROM generate_series(1, {AUTHORS * TWEETS_EACH}) i;
            ANALYZE tweets;""")
        rng = random.Random(14)
        follows = [(reader, author) for reader in range(AUTHORS + 1, AUTHORS + READERS + 1)
                   for author in rng.sample(range(1, AUTHORS + 1), FOLLOWS_EACH)]
        follows += [(fan, BIG_AUTHOR) for fan in range(FIRST_FAN, FIRST_FAN + BIG_FOLLOWERS)]
        self.sql("bench_feed_service",
                 "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (%s, %s, now())",
                 follows)
        self.sql("bench_feed_service", """
            INSERT INTO follower_counts SELECT followee_id, count(*) FROM follows GROUP BY 1;
            ANALYZE follows; ANALYZE follower_counts;""")

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        for process in self.services:
            process.close()
        self.redis.close()
        self.pg.close()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def warm(feed: Feed) -> None:
    log(f"warming {READERS} timelines (each rebuilt once into Redis)")
    readers = range(AUTHORS + 1, AUTHORS + READERS + 1)
    with ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(lambda r: json.loads(get(f"{feed.feed.url}/timelines/{r}")), readers))
    assert all(len(page["data"]) == 20 for page in pages)
    with redis.Redis.from_url(feed.redis.url) as client:
        sizes = [client.zcard(f"timeline:{r}") - 1 for r in readers]
    assert min(sizes) == FOLLOWS_EACH * TWEETS_EACH, (min(sizes), max(sizes))
    # Both services give the same first page.
    for reader in rng_sample(readers, 20):
        assert get(f"{feed.feed.url}/timelines/{reader}") == get(f"{feed.merged.url}/timelines/{reader}")


def rng_sample(population, k: int) -> list:
    return random.Random(1).sample(list(population), k)


def timelines(feed: Feed, tmpdir: Path) -> dict:
    lua = timelines_lua(AUTHORS + 1, AUTHORS + READERS)
    results = {}
    for name, service in (("fan-out (shipped)", feed.feed), ("read-time merge", feed.merged)):
        runs = []
        for _ in range(ROUNDS):
            if WARMUP:
                wrk(service.url, lua, WARMUP, tmpdir, CONNECTIONS)
            runs.append(wrk(service.url, lua, DURATION, tmpdir, CONNECTIONS))
        results[name] = median_of(runs)
        log(f"GET /timelines, {name}: {results[name]['rps']:.0f} req/s, "
            f"p99 {results[name]['p99_ms']:.1f} ms")
    return results


def fan_out_lag(feed: Feed) -> dict:
    log(f"fan-out lag: {LAG_SAMPLES} tweets by an author with {BIG_FOLLOWERS} followers")
    fans = [f"timeline:{fan}" for fan in range(FIRST_FAN, FIRST_FAN + BIG_FOLLOWERS)]
    lags = []
    with redis.Redis.from_url(feed.redis.url) as client:
        with client.pipeline(transaction=False) as pipe:
            for key in fans:  # cached (empty) timelines: the fan-out writes into them
                pipe.zadd(key, {"0": 0})
            pipe.execute()
        for i in range(LAG_SAMPLES):
            body = json.dumps({"user_id": BIG_AUTHOR, "content": f"to everyone {i}"}).encode()
            request = urllib.request.Request(f"{feed.tweets.url}/tweets", data=body,
                                             headers={"Content-Type": "application/json"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                tweet_id = json.loads(response.read())["id"]
            pending = fans
            while pending:
                with client.pipeline(transaction=False) as pipe:
                    for key in pending:
                        pipe.zscore(key, tweet_id)
                    scores = pipe.execute()
                pending = [key for key, score in zip(pending, scores) if score is None]
                if pending:
                    time.sleep(0.002)
            lags.append((time.perf_counter() - started) * 1000)
    lags.sort()
    return {"samples": len(lags), "p50_ms": statistics.median(lags),
            "p99_ms": lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))], "max_ms": lags[-1]}


def mixed(feed: Feed, tmpdir: Path) -> dict:
    """One wrk process through nginx; each request picks its kind by weight."""
    runs = []
    for _ in range(ROUNDS):
        if WARMUP:
            wrk(feed.proxy.url, MIXED_LUA, WARMUP, tmpdir, CONNECTIONS)
        run = wrk(feed.proxy.url, MIXED_LUA, DURATION, tmpdir, CONNECTIONS)
        run["seconds"] = run["raw"]["duration_us"] / 1e6
        runs.append(run)
    result = median_of(runs)
    log(f"mixed workload: {result['rps']:.0f} req/s, p99 {result['p99_ms']:.1f} ms, "
        f"responses by kind {result['kinds']}")
    return result


def report(results: dict) -> str:
    t = results["timelines"]
    fan, merged = t["fan-out (shipped)"], t["read-time merge"]
    lines = [
        "# Feed benchmark", "",
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `make bench-feed` "
        f"(bench/feed_bench.py). Machine: {machine()}, shared with the load generator "
        f"(wrk) and every server. Each service: gunicorn with its shipped defaults "
        f"({workers('feed_service')} workers); durable PostgreSQL; Redis.", "",
        f"Data: {AUTHORS} authors with {TWEETS_EACH} tweets each; {READERS} readers "
        f"following {FOLLOWS_EACH} of them (home timelines of "
        f"{FOLLOWS_EACH * TWEETS_EACH} entries); one author with {BIG_FOLLOWERS} followers.", "",
        f"## GET /timelines/{{id}}, {CONNECTIONS} connections "
        f"(median of {ROUNDS} rounds of {DURATION} s)", "",
        "| configuration | req/s | p50 ms | p99 ms | errors |", "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in t.items():
        lines.append(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['errors']} |")
    lines += ["", f"Fan-out over read-time merge: **{fan['rps'] / merged['rps']:.2f}x** "
                  f"(target >= 3x); fan-out p99 **{fan['p99_ms']:.1f} ms** (target < 50 ms).", ""]
    lag = results["fan_out_lag"]
    lines += [f"## Fan-out lag, author with {BIG_FOLLOWERS} followers", "",
              f"From sending POST /tweets until all {BIG_FOLLOWERS} cached timelines hold the "
              f"tweet, {lag['samples']} tweets one after another: p50 **{lag['p50_ms']:.0f} ms**, "
              f"p99 **{lag['p99_ms']:.0f} ms** (max {lag['max_ms']:.0f} ms).", ""]
    mix = results["mixed"]
    kinds = mix["kinds"]
    answered = sum(k["responses"] for k in kinds.values())
    lines += [f"## Mixed workload through nginx, {CONNECTIONS} connections "
              f"(median of {ROUNDS} rounds of {DURATION} s)", "",
              "One wrk process runs one script that picks each request by weight, as "
              "DeathStarBench's socialNetwork mix does, and sends it to one entry point: nginx "
              "configured like the Ingress (`Proxy` in bench/run.py: /users, /tweets, /follows "
              "and /timelines to their services over keep-alive pools).", "",
              f"All requests: **{mix['rps']:.0f} req/s**, p50 **{mix['p50_ms']:.1f} ms**, "
              f"p99 **{mix['p99_ms']:.1f} ms**, {mix['errors']} errors (all rounds). wrk keeps "
              "one latency histogram for all requests, so latency is not split by kind; each "
              "response is counted under its kind by the X-Request-ID the request carried and "
              "the service echoed.", "",
              "| request | weight | responses | share of responses | req/s | non-2xx |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for kind in [*MIX, *sorted(kinds.keys() - MIX.keys())]:  # then any untagged (nginx's own)
        label, weight = MIX.get(kind, (kind, 0))
        counted = kinds.get(kind, {"responses": 0, "non2xx": 0})
        lines.append(f"| {label} | {weight} % | {counted['responses']} | "
                     f"{100 * counted['responses'] / answered:.1f} % | "
                     f"{counted['responses'] / mix['seconds']:.0f} | {counted['non2xx']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    for tool in ("wrk", "nginx"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            print(f"{tool} not found: `make bench-feed` installs it (apt, as root)",
                  file=sys.stderr)
            return 2
    feed = Feed()
    with tempfile.TemporaryDirectory(prefix="chirp-feed-bench-") as tmp:
        try:
            feed.start(Path(tmp))
            warm(feed)
            results = {"timelines": timelines(feed, Path(tmp)), "fan_out_lag": fan_out_lag(feed),
                       "mixed": mixed(feed, Path(tmp))}
        finally:
            feed.close()
    out = BENCH / "results"
    for r in [*results["timelines"].values(), results["mixed"]]:
        r.pop("raw", None)
    (out / "feed.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results)
    (out / "feed.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
