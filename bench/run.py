"""`make bench`: the seed baseline, Chirp in production mode and the framework
ceiling, measured side by side in one run with wrk; then Chirp's scale curve.

Writes bench/results/results.md, results.json and chart.png, and prints the
table. See bench/README.md for how to read it. Knobs (environment):

  BENCH_DURATION=5   seconds measured per workload, system and round
  BENCH_WARMUP=2     seconds of warm-up before each measurement (not counted)
  BENCH_ROUNDS=3     rounds per cell; the round with the median req/s is
                     reported (this VM's CPU time comes in bursts: one 10 s
                     cell can be 3x off, the median of three is stable)
  BENCH_CONNECTIONS=32, BENCH_WRK_THREADS=2
  BENCH_SYSTEMS=seed,chirp,proxy,ceiling   a subset, e.g. while profiling
                     (proxy: Chirp behind nginx, configured like the Ingress)
  BENCH_WORKLOADS=users,post,timeline,expand,mixed
  BENCH_SCALE=1      0 skips the 10k/100k/1M scale curve
  BENCH_SCALE_CONNECTIONS=4   the scale curve runs below saturation
  BENCH_KEEP=0       1 leaves everything running (for py-spy) until
                     /tmp/chirp-bench-keep.json is deleted

The knobs vary the load, never the servers: Chirp and the ceiling run the
gunicorn settings the services ship (services/*/gunicorn.conf.py, the chart's
defaults and `make run`'s). Server settings in the environment (WEB_CONCURRENCY,
GUNICORN_*, LOG_LEVEL) are dropped, and the settings run are printed.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "services")]

from support.servers import (PostgresServer, RedisServer, ServiceProcess,  # noqa: E402
                             _wait_for, find_free_port, migrate)
from common.pagination import encode_cursor  # noqa: E402

RESULTS = BENCH / "results"
DURATION = int(os.environ.get("BENCH_DURATION", 5))
WARMUP = int(os.environ.get("BENCH_WARMUP", 2))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", 32))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", 2))
SYSTEMS = os.environ.get("BENCH_SYSTEMS", "seed,chirp,proxy,ceiling").split(",")
SCALE = os.environ.get("BENCH_SCALE", "1") == "1"

N_USERS = 10_000          # GET /users/{id} picks among all of them
N_TWEETS = 50_000         # preloaded, 20 each for users 1..N_TWEETERS
N_TWEETERS = 2_500        # GET /tweets?user_id= picks among these: full first pages
WARM_PASSES = 6
SCALE_SIZES = (10_000, 100_000, 1_000_000)
SCALE_USERS = 100         # the scale curve's tweets are spread over 100 users
SCALE_SECONDS = max(3, DURATION // 2)
# The scale curve asks what one query costs as the table grows, so it runs
# below saturation: at 32 connections the latency would be queueing, which
# measures the machine's throughput of the moment, not the query.
SCALE_CONNECTIONS = int(os.environ.get("BENCH_SCALE_CONNECTIONS", 4))

WORKLOADS = {
    # name: (label, which service, Lua body of make_request)
    "users": ("GET /users/{id}", "user", f"""
function make_request()
  return wrk.format("GET", "/users/" .. math.random(1, {N_USERS}))
end"""),
    "post": ("POST /tweets", "tweet", f"""
local headers = {{["Content-Type"] = "application/json"}}
function make_request()
  local body = '{{"user_id":' .. math.random(1, {N_USERS}) .. ',"content":"bench tweet ' .. math.random(1, 1000000) .. '"}}'
  return wrk.format("POST", "/tweets", headers, body)
end"""),
    "timeline": ("GET /tweets?user_id=", "tweet", f"""
function make_request()
  return wrk.format("GET", "/tweets?user_id=" .. math.random(1, {N_TWEETERS}))
end"""),
    "expand": ("GET /tweets?expand=author", "tweet", """
function make_request()
  return wrk.format("GET", "/tweets?expand=author")
end"""),
    "mixed": ("mixed 80% read / 20% write", "tweet", f"""
local headers = {{["Content-Type"] = "application/json"}}
function make_request()
  if math.random() < 0.8 then
    return wrk.format("GET", "/tweets?user_id=" .. math.random(1, {N_TWEETERS}))
  end
  local body = '{{"user_id":' .. math.random(1, {N_USERS}) .. ',"content":"bench mixed ' .. math.random(1, 1000000) .. '"}}'
  return wrk.format("POST", "/tweets", headers, body)
end"""),
}
SELECTED = os.environ.get("BENCH_WORKLOADS", ",".join(WORKLOADS)).split(",")


# Environment variables the services' gunicorn.conf.py reads: server settings,
# which the bench never varies (see the docstring).
SERVER_ENV = re.compile(r"^(WEB_CONCURRENCY|GUNICORN_\w+|LOG_LEVEL)$")
CONFS = {"user_service": REPO / "services/user_service/gunicorn.conf.py",
         "tweet_service": REPO / "services/tweet_service/gunicorn.conf.py",
         "ceiling": BENCH / "ceiling.conf.py"}
SHOWN = ("worker_class_str", "workers", "threads", "worker_connections", "reuse_port", "keepalive",
         "accesslog", "logger_class")


def gunicorn_settings(conf: Path) -> dict:
    """The settings gunicorn runs with under this conf file (and the current
    environment), read back through gunicorn's own config loader."""
    code = ("import json, sys\n"
            "from gunicorn.app.wsgiapp import WSGIApplication\n"
            "sys.argv = ['gunicorn', '-c', sys.argv[1]]\n"
            "cfg = WSGIApplication().cfg\n"
            f"print(json.dumps({{k: str(getattr(cfg, k)) for k in {SHOWN!r}}}))")
    env = {**os.environ, "PYTHONPATH": str(REPO / "services"),
           "PROMETHEUS_MULTIPROC_DIR": tempfile.gettempdir()}
    out = subprocess.run([sys.executable, "-c", code, str(conf)], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    settings = json.loads(out.splitlines()[-1])
    settings["logger_class"] = settings["logger_class"].split("'")[1].rsplit(".", 1)[-1] \
        if "'" in settings["logger_class"] else settings["logger_class"]
    settings["workers"] = int(settings["workers"])
    return settings


def describe(settings: dict) -> str:
    s = settings
    return (f"{s['workers']} × {s['threads']} threads ({s['worker_class_str']}), "
            f"worker_connections {s['worker_connections']}, reuse_port {s['reuse_port']}, "
            f"keepalive {s['keepalive']} s, access log {s['accesslog'] or 'off'} ({s['logger_class']})")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- load generation

def wrk(url: str, lua_body: str, seconds: int, tmpdir: Path, connections: int = CONNECTIONS,
        during=None) -> dict:
    """One wrk run; `during`, if given, is called half-way through and its
    answer kept as the result's "during"."""
    script = tmpdir / f"wrk-{abs(hash(lua_body))}.lua"
    script.write_text(lua_body + "\n" + (BENCH / "wrk.lua").read_text())
    seen = {}
    timer = threading.Timer(seconds / 2, lambda: seen.update(value=during())) if during else None
    if timer:
        timer.start()
    proc = subprocess.run(
        ["wrk", "-t", str(min(WRK_THREADS, connections)), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "5s", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60)
    if timer:
        timer.join()
    match = re.search(r"^BENCH_JSON (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    raw = json.loads(match.group(1))
    errors = raw["non2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "errors": errors, "requests": raw["requests"], "raw": raw,
            "during": seen.get("value"), **({"kinds": raw["kinds"]} if raw["kinds"] else {})}


def measure(url: str, lua_body: str, tmpdir: Path, seconds: int = DURATION,
            connections: int = CONNECTIONS, during=None) -> dict:
    if WARMUP:
        wrk(url, lua_body, WARMUP, tmpdir, connections)
    return wrk(url, lua_body, seconds, tmpdir, connections, during)


def connections_per_worker(services: dict[str, "ServiceProcess"]) -> dict[str, list[int]]:
    """Established TCP connections each gunicorn worker holds on its service's
    port, most first: {"user": [17, 15], ...}. From /proc (net/tcp's socket
    inodes against each worker's open files)."""
    established: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01":  # ESTABLISHED
                port = int(fields[1].rsplit(":", 1)[1], 16)
                established.setdefault(port, set()).add(fields[9])
    counts = {}
    for name, svc in services.items():
        inodes = established.get(svc.port, set())
        per_worker = []
        for pid in svc.worker_pids():
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            links = []
            for fd in fds:
                try:
                    links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    pass
            per_worker.append(sum(1 for link in links if link[8:-1] in inodes and link.startswith("socket:")))
        counts[name] = sorted(per_worker, reverse=True)
    return counts


# --------------------------------------------------------------------------- the three systems

def median_of(runs: list[dict]) -> dict:
    """The run with the median throughput, with every run's errors counted."""
    middle = dict(sorted(runs, key=lambda r: r["rps"])[len(runs) // 2])
    middle["errors"] = sum(r["errors"] for r in runs)
    middle["rounds_rps"] = [round(r["rps"]) for r in runs]
    return middle


def wait_http(url: str, timeout: float = 30) -> None:
    def up():
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except Exception as error:  # noqa: BLE001 - HTTPError (404) means it is up too
            return getattr(error, "code", None) is not None
    _wait_for(up, timeout, url, interval=0.1)


class Seed:
    def __init__(self, tmpdir: Path):
        self.user_port, self.tweet_port = find_free_port(), find_free_port()
        self.user_url = f"http://127.0.0.1:{self.user_port}"
        self.tweet_url = f"http://127.0.0.1:{self.tweet_port}"
        self.log = open(tmpdir / "seed.log", "ab")
        self.procs = []

    def start(self):
        py, script = sys.executable, str(BENCH / "seed.py")
        self.procs = [
            subprocess.Popen([py, script, "users", str(self.user_port), str(N_USERS)],
                             stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True),
            subprocess.Popen([py, script, "tweets", str(self.tweet_port), self.user_url,
                              str(N_TWEETS), str(N_TWEETERS)],
                             stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True),
        ]
        wait_http(self.user_url + "/users/1")
        wait_http(self.tweet_url + "/tweets?user_id=1")
        return self

    def close(self):
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)


class Chirp:
    def __init__(self):
        self.pg = PostgresServer(durable=True, max_connections=300)
        self.redis = RedisServer()
        self.users = self.tweets = None

    def start(self):
        self.pg.start()
        self.redis.start()
        self.user_db = self.pg.create_database("chirp_users")
        self.tweet_db = self.pg.create_database("chirp_tweets")
        migrate("user_service", self.user_db)
        migrate("tweet_service", self.tweet_db)
        self.sql("chirp_users", f"""
            INSERT INTO users (name, handle, created_at)
            SELECT 'User ' || i, 'user' || i, now() FROM generate_series(1, {N_USERS}) i;
            ANALYZE users;""")
        self.load_tweets(0, N_TWEETS, N_TWEETERS)
        self.users = ServiceProcess("user_service", workers=SETTINGS["user_service"]["workers"], env={
            "DATABASE_URL": self.user_db, "REDIS_URL": self.redis.url}).start()
        self.tweets = ServiceProcess("tweet_service", workers=SETTINGS["tweet_service"]["workers"], env={
            "DATABASE_URL": self.tweet_db, "USER_SERVICE_URL": self.users.url}).start()
        # Warm the cache, both tiers: every user, 100 per batch lookup, in
        # WARM_PASSES passes. Each request lands on whichever worker accepts
        # it and fills that worker's near cache: after 6 passes a worker has
        # missed a batch with a chance of 1 in 64.
        for _ in range(WARM_PASSES):
            for first in range(1, N_USERS + 1, 100):
                ids = ",".join(map(str, range(first, min(first + 100, N_USERS + 1))))
                urllib.request.urlopen(f"{self.users.url}/users?ids={ids}").read()
        return self

    def sql(self, db: str, statements: str) -> None:
        conn = self.pg.connect(db)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statements)
        conn.close()

    def load_tweets(self, first: int, last: int, n_users: int) -> None:
        """Tweets with ids first+1..last, round robin over users 1..n_users, in one
        INSERT ... SELECT generate_series straight into the tweet database, then
        the table settled."""
        self.sql("chirp_tweets", f"""
            INSERT INTO tweets (id, user_id, content, created_at)
            SELECT i, 1 + (i - 1) % {n_users}, 'tweet number ' || i, now()
            FROM generate_series({first + 1}, {last}) i;
            SELECT setval(pg_get_serial_sequence('tweets', 'id'), {last});""")
        # Settle the table as a long-lived one is before measuring: vacuumed
        # (hint bits, visibility map, statistics), its pages written out.
        # Otherwise the first reads rewrite the fresh pages, and autovacuum
        # and the checkpoint of the load run during the measurement.
        self.sql("chirp_tweets", "VACUUM (ANALYZE) tweets")
        self.sql("chirp_tweets", "CHECKPOINT")

    def close(self):
        for svc in (self.tweets, self.users):
            if svc:
                svc.close()
        self.redis.close()
        self.pg.close()


class Proxy:
    """Debian's nginx in front of Chirp, configured like the chart's Ingress
    (charts/chirp: path prefixes to services, `routes`: {"/users": user
    service URL, ...}) with ingress-nginx's defaults for the connections that
    matter here: a keep-alive pool to each service (320 idle connections,
    10,000 requests each, dropped after 60 s idle) and 1,000 requests per
    client connection; like it, it passes the client's X-Request-ID on (or
    sets one). Its own prefix, config, pid file and temp dirs under tmpdir;
    one worker process per core, as `worker_processes auto` does in
    ingress-nginx."""

    def __init__(self, tmpdir: Path, routes: dict[str, str]):
        self.port = find_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tmpdir / f"nginx-{self.port}"
        self.dir.mkdir()
        self.conf = self.dir / "nginx.conf"
        upstream = ("    upstream {name} {{\n        server {addr};\n        keepalive 320;\n"
                    "        keepalive_requests 10000;\n        keepalive_timeout 60s;\n    }}\n")
        location = ("        location {path} {{\n            proxy_pass http://{name};\n"
                    "            proxy_http_version 1.1;\n"
                    "            proxy_set_header Connection \"\";\n"
                    "            proxy_set_header Host $host;\n"
                    "            proxy_set_header X-Request-ID $req_id;\n"
                    "            proxy_set_header X-Real-IP $remote_addr;\n"
                    "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
                    "            proxy_set_header X-Forwarded-Proto $scheme;\n        }}\n")
        upstreams = {url: f"service_{n}" for n, url in enumerate(dict.fromkeys(routes.values()))}
        user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"{user}worker_processes auto;\ndaemon off;\npid {self.dir}/nginx.pid;\n"
            f"error_log {self.dir}/error.log warn;\nevents {{ worker_connections 4096; }}\n"
            "http {\n    access_log off;\n"
            + "".join(f"    {kind}_temp_path {self.dir}/{kind};\n"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + "    keepalive_requests 1000;\n"
            + "    map $http_x_request_id $req_id {\n        default $http_x_request_id;\n"
            + "        \"\" $request_id;\n    }\n"
            + "".join(upstream.format(name=name, addr=url.removeprefix("http://"))
                      for url, name in upstreams.items())
            + f"    server {{\n        listen 127.0.0.1:{self.port};\n"
            + "".join(location.format(path=path, name=upstreams[url])
                      for path, url in routes.items())
            + "        location / { return 404; }\n    }\n}\n")
        self.proc = None

    def start(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-p", str(self.dir), "-c", str(self.conf),
                                      "-e", str(self.dir / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_http(self.url + "/users/1")
        return self

    def errors(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rss_mb(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        out.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)
    return out


# --------------------------------------------------------------------------- report

LABELS = {"seed": "seed", "chirp": "chirp", "proxy": "chirp via nginx", "ceiling": "ceiling"}


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "—"


def fmt(result: dict | None, key: str, spec: str) -> str:
    return format(result[key], spec) if result else "—"


def machine() -> str:
    cpu = "?"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def spread(during: dict | None) -> str:
    """Connections per worker, e.g. "users 16/16" (tweets too for calls between them)."""
    if not during:
        return ""
    return ", ".join(f"{name} {'/'.join(map(str, counts))}" for name, counts in during.items() if sum(counts))


def targets(results: dict, scale: list) -> list[tuple[str, str, str, bool]]:
    """(target, direct, via nginx, met) for the issue's targets, from this run."""
    rows = []

    def cell(name, system):
        return results.get(name, {}).get(system)

    def rps_ratio(name, system, base):
        a, b = cell(name, system), cell(name, base)
        return a["rps"] / b["rps"] if a and b else None

    for name, seed_min, ceiling_min, p99_max in (("users", 2.5, 0.7, None), ("post", 2.0, None, 50)):
        if name not in results:
            continue
        label = WORKLOADS[name][0]
        parts = {}
        met = True
        for system in ("chirp", "proxy"):
            if not cell(name, system):
                parts[system] = "—"
                continue
            x_seed, x_ceiling = rps_ratio(name, system, "seed"), rps_ratio(name, system, "ceiling")
            p99 = cell(name, system)["p99_ms"]
            text = [f"{x_seed:.2f}× seed" if x_seed else ""]
            if ceiling_min:
                text.append(f"{x_ceiling:.2f}× ceiling" if x_ceiling else "")
            if p99_max:
                text.append(f"p99 {p99:.1f} ms")
            parts[system] = ", ".join(t for t in text if t)
            if system == "chirp":
                met &= bool(x_seed and x_seed >= seed_min)
                met &= not ceiling_min or bool(x_ceiling and x_ceiling >= ceiling_min)
                met &= not p99_max or p99 < p99_max
        goal = f"≥ {seed_min}× seed" + (f", ≥ {ceiling_min}× ceiling" if ceiling_min else "") + \
            (f", p99 < {p99_max} ms" if p99_max else "")
        rows.append((f"{label} {goal}", parts["chirp"], parts["proxy"], met))
    if scale:
        worst = {kind: max(s["p50_ms"] for s in scale if s["kind"] == kind) /
                 next(s["p50_ms"] for s in scale if s["kind"] == kind) for kind in ("first", "deep")}
        rows.append(("10k → 1M tweets, p50 within 1.5×",
                     f"first page ≤ {worst['first']:.2f}×, deep page ≤ {worst['deep']:.2f}×", "—",
                     max(worst.values()) <= 1.5))
    proxied = [(name, rps_ratio(name, "proxy", "chirp")) for name in results if cell(name, "proxy")]
    if proxied:
        low = min(r for _, r in proxied)
        rows.append(("through nginx within 15 % of direct (req/s)", "",
                     ", ".join(f"{WORKLOADS[n][0]} {r:.2f}×" for n, r in proxied), low >= 0.85))
    errors = sum(r["errors"] for row in results.values() for r in row.values()) + \
        sum(s["errors"] for s in scale)
    rows.append(("zero errors", str(sum(r["errors"] for row in results.values() for k, r in row.items()
                                        if k != "proxy") + sum(s["errors"] for s in scale)),
                 str(sum(row["proxy"]["errors"] for row in results.values() if "proxy" in row)),
                 errors == 0))
    return rows


def report(results: dict, scale: list, rss: dict, started: float, load: list[float]) -> str:
    lines = [f"# Chirp benchmark — {time.strftime('%Y-%m-%d %H:%M %Z')}", "",
             f"Machine: {machine()}. Shared with the load generator (wrk, {WRK_THREADS} threads, "
             f"{CONNECTIONS} connections), PostgreSQL, Redis and nginx. Each cell: the median of "
             f"{ROUNDS} rounds of {DURATION} s, each after a {WARMUP} s warm-up; systems interleaved. "
             f"Load average (1 min) before the bench started anything: {load[0]:.1f} (the rest of "
             f"the machine; above 1 it competed for the cores), at the end: {load[1]:.1f}.", "",
             "gunicorn settings run (the services' defaults: chart and `make run`):", ""]
    for name, settings in SETTINGS.items():
        lines.append(f"* {name}: {describe(settings)}")
    lines += ["", "| workload | system | req/s | p50 ms | p99 ms | errors | × seed | × ceiling "
              "| nginx / direct | connections per worker |",
              "|---|---|--:|--:|--:|--:|--:|--:|--:|---|"]
    for name in SELECTED:
        label = WORKLOADS[name][0]
        row = results.get(name, {})
        for k, system in enumerate(SYSTEMS):
            r = row.get(system)
            extra = ("", "", "")
            if system in ("chirp", "proxy") and r:
                extra = (ratio(r["rps"], row.get("seed", {}).get("rps")),
                         ratio(r["rps"], row.get("ceiling", {}).get("rps")),
                         ratio(r["rps"], row.get("chirp", {}).get("rps")) if system == "proxy" else "")
            lines.append(f"| {label if k == 0 else ''} | {LABELS[system]} | {fmt(r, 'rps', ',.0f')} | "
                         f"{fmt(r, 'p50_ms', '.1f')} | {fmt(r, 'p99_ms', '.1f')} | "
                         f"{r['errors'] if r else '—'} | {extra[0]} | {extra[1]} | {extra[2]} | "
                         f"{spread(r and r.get('during'))} |")
    if scale:
        base = {kind: next((s for s in scale if s["kind"] == kind), None) for kind in ("first", "deep")}
        lines += ["", f"## Scale: GET /tweets?user_id= as the tweet table grows (Chirp, {SCALE_CONNECTIONS} "
                  f"connections, median of {ROUNDS} × {SCALE_SECONDS} s)", "",
                  f"Tweets spread over {SCALE_USERS} users; deep page = a cursor half-way down the "
                  "user's timeline (at 1M rows: 5,000 tweets deep).", "",
                  "| tweets | page | req/s | p50 ms | p99 ms | errors | p50 vs 10k |",
                  "|--:|---|--:|--:|--:|--:|--:|"]
        for s in scale:
            b = base[s["kind"]]
            lines.append(f"| {s['size']:,} | {s['kind']} | {s['rps']:,.0f} | {s['p50_ms']:.1f} | "
                         f"{s['p99_ms']:.1f} | {s['errors']} | {s['p50_ms'] / b['p50_ms']:.2f}× |")
    rows = targets(results, scale)
    if rows:
        lines += ["", "## Targets (issue 12), this run", "", "| target | direct | via nginx | met? |",
                  "|---|---|---|---|"]
        lines += [f"| {t} | {d} | {v} | {'met' if ok else '**not met**'} |" for t, d, v, ok in rows]
    if rss:
        lines += ["", "## Memory: RSS per gunicorn worker (after the run)", "",
                  "| process | workers | RSS each (MiB) |", "|---|--:|---|"]
        for name, values in rss.items():
            lines.append(f"| {name} | {len(values)} | {', '.join(f'{v:.0f}' for v in values)} |")
    lines += ["", f"Total benchmark time: {time.monotonic() - started:.0f} s.", ""]
    return "\n".join(lines)


def chart(results: dict, scale: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5))
    names = [n for n in SELECTED if n in results]
    width = 0.8 / max(len(SYSTEMS), 1)
    colors = {"seed": "#999999", "chirp": "#1f77b4", "proxy": "#2ca02c", "ceiling": "#ff7f0e"}
    for k, system in enumerate(SYSTEMS):
        values = [results[n].get(system, {}).get("rps", 0) for n in names]
        left.bar([i + (k - (len(SYSTEMS) - 1) / 2) * width for i in range(len(names))], values,
                 width, label=LABELS[system], color=colors.get(system))
    left.set_xticks(range(len(names)), [WORKLOADS[n][0] for n in names], rotation=15, fontsize=8)
    left.set_ylabel("requests/s (higher is better)")
    left.set_title(f"Throughput, {CONNECTIONS} connections")
    left.legend()
    for kind, style in (("first", "o-"), ("deep", "s--")):
        points = [s for s in scale if s["kind"] == kind]
        if points:
            right.plot([p["size"] for p in points], [p["p50_ms"] for p in points], style,
                       label=f"{kind} page p50")
            right.plot([p["size"] for p in points], [p["p99_ms"] for p in points], style,
                       alpha=0.4, label=f"{kind} page p99")
    right.set_xscale("log")
    right.set_ylim(bottom=0)
    right.set_xlabel("tweets in the table")
    right.set_ylabel("latency ms (flat is good)")
    right.set_title("GET /tweets?user_id= vs table size")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --------------------------------------------------------------------------- main

SETTINGS: dict[str, dict] = {}


def shipped_settings() -> None:
    """Drop server settings from the environment, so that every gunicorn here
    runs the services' defaults, and record what those are."""
    dropped = sorted(name for name in os.environ if SERVER_ENV.match(name))
    for name in dropped:
        del os.environ[name]
    if dropped:
        log("ignored (the bench runs the shipped settings): " + ", ".join(dropped))
    for name, conf in CONFS.items():
        SETTINGS[name] = gunicorn_settings(conf)
        log(f"{name}: {describe(SETTINGS[name])}")


def main() -> int:
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk (make bench does it when run as root)", file=sys.stderr)
        return 2
    if "proxy" in SYSTEMS and not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        print("nginx not found: apt-get install nginx-light (make bench does it when run as root)",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    load = [os.getloadavg()[0]]
    shipped_settings()
    RESULTS.mkdir(exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix="chirp-bench-"))
    seed = chirp = proxy = ceiling = None
    results: dict[str, dict] = {}
    scale: list[dict] = []
    rss: dict[str, list[float]] = {}
    try:
        log("starting systems: " + ", ".join(SYSTEMS))
        if "seed" in SYSTEMS:
            seed = Seed(tmpdir).start()
        if "chirp" in SYSTEMS or "proxy" in SYSTEMS:
            chirp = Chirp().start()
        if "proxy" in SYSTEMS:
            proxy = Proxy(tmpdir, {"/users": chirp.users.url, "/tweets": chirp.tweets.url}).start()
        if "ceiling" in SYSTEMS:
            ceiling = ServiceProcess("ceiling", config=CONFS["ceiling"],
                                     workers=SETTINGS["ceiling"]["workers"]).start()
        urls = {"seed": seed and {"user": seed.user_url, "tweet": seed.tweet_url},
                "chirp": chirp and {"user": chirp.users.url, "tweet": chirp.tweets.url},
                "proxy": proxy and {"user": proxy.url, "tweet": proxy.url},
                "ceiling": ceiling and {"user": ceiling.url, "tweet": ceiling.url}}
        watched = {"chirp": chirp and {"users": chirp.users, "tweets": chirp.tweets},
                   "proxy": chirp and {"users": chirp.users, "tweets": chirp.tweets},
                   "ceiling": ceiling and {"ceiling": ceiling}}
        if os.environ.get("BENCH_KEEP") == "1":
            keep = Path(tempfile.gettempdir()) / "chirp-bench-keep.json"
            keep.write_text(json.dumps({**urls, "pids": {
                "user": chirp and chirp.users.worker_pids(), "tweet": chirp and chirp.tweets.worker_pids()}}))
            log(f"running until {keep} is deleted")
            while keep.exists():
                time.sleep(0.5)
            return 0
        # Systems interleaved per workload and round, so that noise from
        # the rest of the machine is shared by the figures a ratio compares.
        for name in SELECTED:
            label, service, lua = WORKLOADS[name]
            runs: dict[str, list[dict]] = {system: [] for system in SYSTEMS}
            for round_ in range(1, ROUNDS + 1):
                for system in SYSTEMS:
                    during = watched.get(system) and (lambda w=watched[system]: connections_per_worker(w))
                    r = measure(urls[system][service], lua, tmpdir, during=during)
                    runs[system].append(r)
                    log(f"{label:<28} {system:<8} round {round_}: {r['rps']:8,.0f} req/s  "
                        f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}  "
                        f"{spread(r['during'])}")
            results[name] = {system: median_of(runs[system]) for system in SYSTEMS}
        if chirp:
            rss["chirp user_service"] = rss_mb(chirp.users.worker_pids())
            rss["chirp tweet_service"] = rss_mb(chirp.tweets.worker_pids())
        if ceiling:
            rss["ceiling"] = rss_mb(ceiling.worker_pids())
        if chirp and SCALE and "chirp" in SYSTEMS:
            scale = scale_curve(chirp, tmpdir)
    finally:
        if proxy and proxy.errors().strip():
            log("nginx error log:\n" + proxy.errors()[-3000:])
        for system in (proxy, ceiling, chirp, seed):
            if system:
                system.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    load.append(os.getloadavg()[0])
    text = report(results, scale, rss, started, load)
    (RESULTS / "results.md").write_text(text)
    (RESULTS / "results.json").write_text(json.dumps(
        {"results": results, "scale": scale, "rss_mb": rss, "machine": machine(), "loadavg": load,
         "gunicorn": SETTINGS,
         "load": {"duration": DURATION, "warmup": WARMUP, "rounds": ROUNDS,
                  "connections": CONNECTIONS, "wrk_threads": WRK_THREADS}}, indent=1))
    chart(results, scale, RESULTS / "chart.png")
    print()
    print(text)
    print(f"written: {RESULTS / 'results.md'}, {RESULTS / 'chart.png'}")
    errors = sum(r["errors"] for row in results.values() for r in row.values()) + \
        sum(s["errors"] for s in scale)
    return 1 if errors else 0


def scale_curve(chirp: Chirp, tmpdir: Path) -> list[dict]:
    chirp.sql("chirp_tweets", "TRUNCATE tweets")
    loaded, points = 0, []
    for size in SCALE_SIZES:
        log(f"scale: loading tweets {loaded + 1:,}..{size:,}")
        chirp.load_tweets(loaded, size, SCALE_USERS)
        loaded = size
        per_user = size // SCALE_USERS
        # User u's tweets have ids u, u+100, u+200, ...: the one half-way down.
        deep = [f"/tweets?user_id={u}&cursor={encode_cursor(u + SCALE_USERS * (per_user // 2))}"
                for u in range(1, SCALE_USERS + 1)]
        paths = {"first": [f"/tweets?user_id={u}" for u in range(1, SCALE_USERS + 1)], "deep": deep}
        for kind, choices in paths.items():
            lua = ("local paths = {" + ",".join(f'"{p}"' for p in choices) + "}\n"
                   "function make_request()\n  return wrk.format(\"GET\", paths[math.random(#paths)])\nend")
            r = median_of([measure(chirp.tweets.url, lua, tmpdir, SCALE_SECONDS, SCALE_CONNECTIONS)
                           for _ in range(ROUNDS)])
            r.update(size=size, kind=kind)
            points.append(r)
            log(f"scale {size:>9,} {kind:<5} {r['rps']:8,.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                f"p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}")
    return points


if __name__ == "__main__":
    sys.exit(main())
