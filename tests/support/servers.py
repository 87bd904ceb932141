"""Real servers for the test suites: throwaway PostgreSQL and Redis instances
and gunicorn processes running the Chirp services.

Every suite (contract, fault, benchmark) talks to real processes over real
sockets, so what passes here is what runs in production. Each server lives in
its own temp dir on a free loopback port, so parallel runs never collide and
nothing outside the temp dir is touched.

Set TEST_DATABASE_URL / TEST_REDIS_URL to use existing servers instead
(e.g. CI service containers); see postgres_server() and redis_server().
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import redis
from psycopg2 import sql

REPO = Path(__file__).resolve().parents[2]
PG_LIB_GLOB = "/usr/lib/postgresql/*/bin"  # Debian/Ubuntu keep server binaries off PATH


class ServerUnavailable(RuntimeError):
    """The server software is missing and no external server is configured."""


class ExternalServerError(RuntimeError):
    """Lifecycle operations (stop/kill/restart) are impossible on a server we do not own."""


def find_free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it; tiny reuse race accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check, timeout: float, what: str, interval: float = 0.05):
    """Poll check() until it returns a truthy value; raise TimeoutError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process from /proc, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and ')', so split after its last ')'.
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def _alive(pid: int) -> bool:
    # A zombie counts as dead: processes we did not spawn are reaped by init, which
    # in a container may never happen.
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def _children(pid: int) -> list[int]:
    """Live child processes of pid, from /proc (psutil is not a dependency)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[1] == pid and stat[0] != "Z":
                kids.append(int(entry))
    return sorted(kids)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# --------------------------------------------------------------------------- PostgreSQL


def find_postgres_bindir() -> Path:
    """Directory holding initdb and postgres: PATH first (so a developer can pick a
    version), else the newest Debian/Ubuntu /usr/lib/postgresql/<ver>/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        # Resolve symlinks (e.g. /usr/local/bin/initdb) so `postgres` is found next to it.
        return Path(on_path).resolve().parent
    versions = [Path(d) for d in glob.glob(PG_LIB_GLOB) if (Path(d) / "initdb").exists()]
    if versions:
        return max(versions, key=lambda d: int(d.parent.name.split(".")[0]))
    raise ServerUnavailable(
        "PostgreSQL server binaries not found: install them (Debian/Ubuntu: "
        "`apt-get install postgresql`; macOS: `brew install postgresql`) or set "
        "TEST_DATABASE_URL to a server where you may create databases"
    )


class _PostgresBase:
    """Database management shared by the local and the external server."""

    managed = True  # False when we cannot stop/kill the server (external mode)

    def url(self, name: str) -> str:
        """SQLAlchemy URL of database `name` (which must exist)."""
        raise NotImplementedError

    @property
    def admin_url(self) -> str:
        """URL of the maintenance database, for CREATE/DROP DATABASE."""
        return self.url(self._admin_db)

    def connect(self, name: str | None = None, **kwargs):
        """A psycopg2 connection to database `name` (default: the maintenance DB)."""
        libpq_url = self.url(name or self._admin_db).replace("+psycopg2", "", 1)
        return psycopg2.connect(libpq_url, **kwargs)

    def create_database(self, name: str) -> str:
        """(Re)create an empty database and return its SQLAlchemy URL."""
        conn = self.connect()
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with conn.cursor() as cur:
                # FORCE drops leftover connections, e.g. from a previous killed run.
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        self._created.add(name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            conn.close()
        self._created.discard(name)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


class PostgresServer(_PostgresBase):
    """A private PostgreSQL cluster in a temp dir, listening on 127.0.0.1:<free port>.

    durable=False (tests) turns off fsync and full-page writes: data still reaches the
    OS page cache, so a committed row survives kill() of the server -- only an OS crash
    could lose it, which tests never simulate. synchronous_commit is left at its default
    in both modes, so fault tests see exactly the production commit semantics.
    durable=True (benchmarks) keeps every setting at the production default.
    """

    superuser = "postgres"  # set by initdb -U, whatever the OS user is
    _admin_db = "postgres"

    def __init__(self, durable: bool = False, max_connections: int = 200):
        self.bindir = find_postgres_bindir()
        self.durable = durable
        self.max_connections = max_connections
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self._created: set[str] = set()
        self.proc: subprocess.Popen | None = None
        self._run_as = self._unprivileged_user() if os.geteuid() == 0 else None

    @staticmethod
    def _unprivileged_user() -> pwd.struct_passwd:
        # PostgreSQL refuses to run as root; use the packaged `postgres` account, else nobody.
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                pass
        raise ServerUnavailable("running as root and neither a `postgres` nor a `nobody` user exists")

    @property
    def datadir(self) -> Path:
        return self.tmpdir / "data"

    @property
    def logfile(self) -> Path:
        return self.tmpdir / "postgres.log"

    def _drop_privileges(self) -> dict:
        """subprocess arguments that run a PostgreSQL program as the unprivileged user."""
        if not self._run_as:
            return {}
        return dict(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])

    def _init_cluster(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="chirp-pg-"))
        if self._run_as:
            os.chown(self.tmpdir, self._run_as.pw_uid, self._run_as.pw_gid)
        # --no-sync: a throwaway cluster need not be flushed to disk.
        proc = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.superuser, "-A", "trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            capture_output=True, text=True, timeout=120, cwd=self.tmpdir, **self._drop_privileges(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        self.port = find_free_port()
        # Settings live in postgresql.conf so that restart() after kill() comes back
        # with the same port and behaviour.
        settings = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.tmpdir}'",  # not /var/run/postgresql
            "max_connections": self.max_connections,
        }
        if not self.durable:
            settings.update(fsync="off", full_page_writes="off")
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# chirp tests\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))

    def start(self, timeout: float = 60) -> None:
        """Start the server (creating the cluster on first use); waits until it accepts
        connections, which after kill() includes crash recovery."""
        if self.tmpdir is None:
            self._init_cluster()
        # The postmaster runs as our own child rather than through `pg_ctl start`, so we
        # reap it when it dies: in containers whose PID 1 never reaps orphans, a zombie
        # postmaster would keep its PID "alive" and block the next start.
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.datadir)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.tmpdir,
                start_new_session=True,  # Ctrl-C in pytest must not reach it
                **self._drop_privileges(),
            )

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}):\n{_tail(self.logfile)}")
            try:
                self.connect(connect_timeout=1).close()
                return True
            except psycopg2.OperationalError:
                return False  # not listening yet, or "the database system is starting up"

        _wait_for(ready, timeout, "PostgreSQL to accept connections", interval=0.1)

    def stop(self, mode: str = "fast") -> None:
        """Shut down cleanly; mode as in pg_ctl: smart, fast or immediate. No-op when stopped."""
        if self.postmaster_pid() is None:
            return
        self.proc.send_signal({"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode])
        self.proc.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its backends, as a crash of the host would.
        Backends would exit by themselves once they notice the postmaster is gone, but
        not at once: a test could still use its connection, and restart() would find
        the shared memory busy."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        self.proc.send_signal(signal.SIGSTOP)  # no new backends while we collect them
        backends = _children(pid)
        for p in [*backends, pid]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        _wait_for(lambda: not any(map(_alive, backends)), 10, "the killed backends to exit")

    def restart(self) -> None:
        """Stop (if running) and start again on the same port; after kill() this runs crash recovery."""
        self.stop()
        self.start()

    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster, or None."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def url(self, name: str) -> str:
        return f"postgresql+psycopg2://{self.superuser}@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        """Stop the server and delete the cluster."""
        if self.tmpdir is None:
            return
        try:
            self.stop("immediate")  # the data is thrown away: no checkpoint needed
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


class ExternalPostgres(_PostgresBase):
    """An existing server given by TEST_DATABASE_URL (its user may CREATE DATABASE).

    Only databases are managed: start() checks connectivity, close() drops the databases
    we created, stop()/kill()/restart() raise ExternalServerError -- fault tests should
    skip when `server.managed` is False.
    """

    managed = False

    def __init__(self, url: str):
        parts = urlsplit(url)
        self._parts = parts._replace(scheme="postgresql+psycopg2")
        self._admin_db = parts.path.lstrip("/") or "postgres"
        self.port = parts.port or 5432
        self._created: set[str] = set()

    def url(self, name: str) -> str:
        return urlunsplit(self._parts._replace(path=f"/{name}"))

    def start(self) -> None:
        self.connect().close()  # fail early and clearly if the server is unreachable

    def _unsupported(self, *args, **kwargs):
        raise ExternalServerError("TEST_DATABASE_URL points to an external server: it cannot be stopped or killed")

    stop = kill = restart = _unsupported

    def close(self) -> None:
        for name in list(self._created):
            self.drop_database(name)


def postgres_server(durable: bool = False, max_connections: int = 200) -> _PostgresBase:
    """PostgreSQL for tests: external if TEST_DATABASE_URL is set, else a private one
    (raises ServerUnavailable with install instructions when neither is possible)."""
    if os.environ.get("TEST_DATABASE_URL"):
        return ExternalPostgres(os.environ["TEST_DATABASE_URL"])
    return PostgresServer(durable=durable, max_connections=max_connections)


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """A private redis-server on 127.0.0.1:<free port>, without persistence."""

    managed = True

    def __init__(self):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            raise ServerUnavailable(
                "redis-server not found: install it (Debian/Ubuntu: `apt-get install redis-server`; "
                "macOS: `brew install redis`) or set TEST_REDIS_URL"
            )
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def logfile(self) -> Path:
        return self.tmpdir / "redis.log"

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis.from_url(self.url, **kwargs)

    def start(self, timeout: float = 10) -> None:
        """Start (or, after stop()/kill(), restart on the same port) and wait for PING."""
        if self.tmpdir is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="chirp-redis-"))
            self.port = find_free_port()
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no",  # nothing to persist: a restart starts empty
             "--dir", str(self.tmpdir), "--logfile", str(self.logfile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}):\n{_tail(self.logfile)}")
            try:
                with self.client(socket_timeout=1) as c:
                    return c.ping()
            except redis.ConnectionError:
                return False

        _wait_for(ready, timeout, "redis-server to answer PING")

    def stop(self) -> int | None:
        """SIGTERM and wait; returns the exit code (None if not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.terminate()
        return self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, for fault tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self, ms: int) -> None:
        """Freeze every client for `ms` milliseconds (CLIENT PAUSE): Redis stays connected
        but answers nothing, like a server stuck in a long GC or a network stall."""
        with self.client() as c:
            c.client_pause(ms)

    def close(self) -> None:
        self.kill()  # nothing to save
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


class ExternalRedis(RedisServer):
    """An existing Redis given by TEST_REDIS_URL. Choose a DB number reserved for tests
    (e.g. redis://host:6379/15): start() FLUSHDBs it. stop()/kill()/restart() raise."""

    managed = False

    def __init__(self, url: str):
        self._url = url

    @property
    def url(self) -> str:
        return self._url

    def start(self, timeout: float = 10) -> None:
        with self.client(socket_timeout=timeout) as c:
            c.flushdb()  # a clean slate, as a private server would give

    def _unsupported(self, *args, **kwargs):
        raise ExternalServerError("TEST_REDIS_URL points to an external server: it cannot be stopped or killed")

    stop = kill = restart = _unsupported

    def close(self) -> None:
        pass


def redis_server() -> RedisServer:
    """Redis for tests: external if TEST_REDIS_URL is set, else a private one."""
    if os.environ.get("TEST_REDIS_URL"):
        return ExternalRedis(os.environ["TEST_REDIS_URL"])
    return RedisServer()


# --------------------------------------------------------------------------- Chirp services


def _service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "services"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath, **(extra or {})}


def migrate(service: str, database_url: str, env: dict[str, str] | None = None) -> str:
    """Run `python -m <service> upgrade` against database_url; returns its output."""
    proc = subprocess.run(
        [sys.executable, "-m", service, "upgrade"],
        env=_service_env({"DATABASE_URL": database_url, **(env or {})}),
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{service} upgrade failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


class ServiceProcess:
    """A Chirp service running under real gunicorn, the way it runs in production.

    ServiceProcess("user_service", env={"DATABASE_URL": ...}).start() runs
    `python -m gunicorn -c services/<service>/gunicorn.conf.py` on 127.0.0.1:<port>
    (the conf reads HOST, PORT and WEB_CONCURRENCY; `threads` becomes --threads, which
    wins over the conf). `config` overrides the conf path, e.g. for a stand-in app.
    """

    def __init__(self, service: str, env: dict[str, str] | None = None, port: int | None = None,
                 workers: int = 2, threads: int | None = None, config: str | Path | None = None):
        self.service = service
        self.port = port or find_free_port()
        self.workers = workers
        self.config = Path(config) if config else REPO / "services" / service / "gunicorn.conf.py"
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"chirp-{service}-"))
        self.log_path = self.tmpdir / "service.log"
        metrics_dir = self.tmpdir / "prometheus"  # prometheus_client multiprocess mode needs a fresh dir
        metrics_dir.mkdir()
        self.env = _service_env({
            "HOST": "127.0.0.1", "PORT": str(self.port), "WEB_CONCURRENCY": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **(env or {}),
        })
        self.cmd = [sys.executable, "-m", "gunicorn", "-c", str(self.config)]
        if threads is not None:
            self.cmd += ["--threads", str(threads)]  # the command line overrides the conf file
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 20) -> "ServiceProcess":
        """Start gunicorn and wait until GET /healthz answers 200."""
        with open(self.log_path, "ab") as log:
            # Own session: Ctrl-C in pytest does not reach it, and kill() can take the
            # master and its workers down together.
            self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=REPO, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.service} exited with {self.proc.returncode} during startup:\n"
                                   f"{_tail(self.log_path)}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    return resp.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False  # not listening yet, or not healthy yet (HTTPError is a URLError)

        try:
            _wait_for(healthy, timeout, f"{self.service} /healthz", interval=0.1)
        except TimeoutError as exc:
            self.kill()
            raise TimeoutError(f"{exc}\n{_tail(self.log_path)}") from None
        # Fault tests pick workers by PID: wait until all of them are forked.
        _wait_for(lambda: len(self.worker_pids()) >= self.workers, timeout, f"{self.workers} workers")
        return self

    def signal(self, sig: int) -> None:
        """Send a signal to the gunicorn master (e.g. SIGHUP reloads, SIGTTIN adds a worker)."""
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int | None:
        """Graceful shutdown (SIGTERM); returns gunicorn's exit code (None if not started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the master and its workers (the process group), like a crashed container.
        To kill one worker only: os.kill(svc.worker_pids()[0], signal.SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def worker_pids(self) -> list[int]:
        """PIDs of the live gunicorn workers (children of the master), from /proc."""
        return _children(self.proc.pid) if self.proc else []

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
