"""Machinery for the image harness: packages, a Docker engine, a local base
image, and throwaway PostgreSQL / Redis servers on the loopback.

No registry is reachable here, so nothing is pulled: the base image is made
with debootstrap from Debian's package mirror and imported into the engine.
Everything this module starts it also stops; nothing it did not start is
touched.

Also usable from the command line, e.g. to prepare a machine:
    python tests/images/infra.py base-image    # prints the base image tag
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent

HOST_CA_BUNDLE = pathlib.Path("/etc/ssl/certs/ca-certificates.crt")
BASE_REPO = "chirp-test/debian-python"
SUITE = "bookworm"
# What goes into the base: the interpreter and venv support (ensurepip's
# wheels), nothing else. pip itself comes with each venv.
BASE_PACKAGES = ["python3", "python3-venv"]
# Bump when the recipe below changes in a way the tag would not notice.
BASE_RECIPE_VERSION = "1"


def log(*parts: object) -> None:
    print("[images]", *parts, file=sys.stderr, flush=True)


def run(cmd, *, check=True, capture=False, **kw) -> subprocess.CompletedProcess:
    log("$", " ".join(map(str, cmd)) if isinstance(cmd, (list, tuple)) else cmd)
    if capture:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
    return subprocess.run(cmd, check=check, **kw)


# --------------------------------------------------------------------------
# Debian packages
# --------------------------------------------------------------------------
_apt_updated = False


def _installed(pkg: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # ${Status} is "<want> ok <state>": only the state "installed" counts
    # ("install ok installed", or held). "unknown ok not-installed" (a package
    # dpkg once knew) also ends in "installed".
    words = r.stdout.split()
    return r.returncode == 0 and len(words) == 3 and words[2] == "installed"


def ensure_packages(*pkgs: str) -> None:
    """apt-get install the packages that are missing (as root)."""
    global _apt_updated
    missing = [p for p in pkgs if not _installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"missing Debian packages {missing} and not root to install them")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        run(["apt-get", "update", "-qq"], env=env)
        _apt_updated = True
    # Keep package postinst scripts from starting system services we don't
    # use (a stock redis / postgres cluster / dockerd): we start our own.
    policy = pathlib.Path("/usr/sbin/policy-rc.d")
    placed = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        placed = True
    try:
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)
    finally:
        if placed:
            policy.unlink(missing_ok=True)


# --------------------------------------------------------------------------
# Docker engine
# --------------------------------------------------------------------------
def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=60).returncode == 0


class DockerEngine:
    """Uses the engine that answers, or starts dockerd and later stops it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.logfile: pathlib.Path | None = None

    @property
    def started_here(self) -> bool:
        return self.proc is not None

    def start(self) -> "DockerEngine":
        if docker_answers():
            log("using the Docker engine that is already running")
            return self
        if not shutil.which("dockerd") or not shutil.which("docker"):
            ensure_packages("docker.io")
        if os.geteuid() != 0:
            raise RuntimeError("no Docker engine answers and not root to start dockerd")
        self.logfile = pathlib.Path(tempfile.gettempdir()) / "chirp-images-dockerd.log"
        # No bridge and no iptables: every container and build step uses the
        # host network, so nothing else is needed (and sandboxes often lack
        # iptables). The storage driver is left to dockerd (overlay2 where it
        # works); CHIRP_DOCKERD_ARGS adds flags, e.g. --storage-driver=vfs.
        args = ["dockerd", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
                "--bridge=none"]
        args += os.environ.get("CHIRP_DOCKERD_ARGS", "").split()
        log("starting", " ".join(args), "(log:", self.logfile, ")")
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.logfile.read_text(errors="replace")[-3000:]
                self.proc = None
                raise RuntimeError(f"dockerd exited early:\n{tail}")
            if docker_answers():
                log("dockerd is up, pid", self.proc.pid)
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("dockerd did not answer within 60 s")

    def stop(self) -> None:
        if self.proc is None:
            return
        log("stopping the dockerd this harness started, pid", self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def docker_env() -> dict:
    """Environment for docker commands: the legacy builder when no buildx is
    installed (BuildKit would need it, and could not pull its frontend)."""
    env = dict(os.environ)
    if "DOCKER_BUILDKIT" not in env:
        has_buildx = subprocess.run(["docker", "buildx", "version"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL).returncode == 0
        if not has_buildx:
            env["DOCKER_BUILDKIT"] = "0"
    return env


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


# --------------------------------------------------------------------------
# The local base image: debootstrap bookworm + python3 + python3-venv
# --------------------------------------------------------------------------
def _apt_mirror() -> str:
    """The Debian mirror the host's apt uses, so the base comes from where
    the host's packages come from."""
    for src in sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.sources")) + \
            [pathlib.Path("/etc/apt/sources.list")]:
        if not src.exists():
            continue
        text = src.read_text(errors="replace")
        if src.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith("#"):
                        k, v = line.split(":", 1)
                        fields[k.strip().lower()] = v.strip()
                if SUITE in fields.get("suites", "").split() and "deb" in fields.get("types", ""):
                    uri = fields.get("uris", "").split()
                    if uri and "security" not in uri[0]:
                        return uri[0]
        else:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and SUITE in parts and "security" not in line:
                    uri = [p for p in parts[1:] if "://" in p]
                    if uri:
                        return uri[0]
    return "http://deb.debian.org/debian"


def base_image_tag() -> str:
    """The tag names what is inside: recipe, suite, packages and the host's CA
    bundle (which is baked in so pip can reach the index from a build)."""
    h = hashlib.sha256()
    h.update(BASE_RECIPE_VERSION.encode())
    h.update(SUITE.encode())
    h.update(" ".join(BASE_PACKAGES).encode())
    if HOST_CA_BUNDLE.exists():
        h.update(HOST_CA_BUNDLE.read_bytes())
    return f"{BASE_REPO}:{SUITE}-{h.hexdigest()[:12]}"


def _unmount_under(root: pathlib.Path) -> None:
    mounts = []
    with open("/proc/self/mounts") as f:
        for line in f:
            target = line.split()[1].replace("\\040", " ")
            if target == str(root) or target.startswith(str(root) + "/"):
                mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False)


# Environment of the base image: where the CA bundle is, for every client
# that might look (pip, requests, OpenSSL).
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
    "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_DEFAULT_TIMEOUT": "120",
}


def ensure_base_image(force: bool = False) -> str:
    """Build (once) and return the tag of the local Debian + Python base."""
    tag = base_image_tag()
    if not force and image_exists(tag):
        log("base image cached:", tag)
        return tag
    ensure_packages("debootstrap", "debian-archive-keyring")
    if os.geteuid() != 0:
        raise RuntimeError("debootstrap needs root")
    mirror = _apt_mirror()
    started = time.monotonic()
    work = pathlib.Path(tempfile.mkdtemp(prefix="chirp-base-", dir="/var/tmp"))
    root = work / "rootfs"
    try:
        # debootstrap is chatty: its progress goes to stderr, never stdout.
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
             SUITE, str(root), mirror], stdout=sys.stderr)
        _unmount_under(root)
        # Trim what a container never needs: apt caches and lists, docs.
        for rel in ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                    "usr/share/man", "usr/share/info", "usr/share/locale", "var/log"]:
            p = root / rel
            if p.is_dir():
                for child in p.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        # The host's CA bundle (it may hold a site CA that the path to the
        # package index needs); minbase has no ca-certificates of its own.
        certs = root / "etc/ssl/certs"
        certs.mkdir(parents=True, exist_ok=True)
        if HOST_CA_BUNDLE.exists():
            shutil.copyfile(HOST_CA_BUNDLE, certs / "ca-certificates.crt")
        # Official python images answer to `python`; so does this one.
        py = root / "usr/bin/python"
        if not py.exists() and not py.is_symlink():
            py.symlink_to("python3")
        changes = []
        for k, v in BASE_ENV.items():
            changes += ["--change", f"ENV {k}={v}"]
        changes += ["--change", 'CMD ["python3"]']
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-cf", "-", "."],
                               stdout=subprocess.PIPE)
        try:
            run(["docker", "import", *changes, "-", tag], stdin=tar.stdout, stdout=sys.stderr)
        finally:
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError("tar of the base rootfs failed")
        log(f"base image {tag} built in {time.monotonic() - started:.0f} s")
        return tag
    finally:
        _unmount_under(root)
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


# --------------------------------------------------------------------------
# Throwaway PostgreSQL and Redis come from tests/support/servers.py (shared
# with the other suites); this only makes sure their software is installed.
# --------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_server_software() -> None:
    if not os.environ.get("TEST_DATABASE_URL") and not list(
            pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb")) and not shutil.which("pg_ctl"):
        ensure_packages("postgresql-15")
    if not os.environ.get("TEST_REDIS_URL") and not shutil.which("redis-server"):
        ensure_packages("redis-server")


def main(argv: list[str]) -> int:
    if argv[:1] == ["base-image"]:
        engine = DockerEngine().start()
        try:
            print(ensure_base_image(force="--force" in argv))
        finally:
            if "--keep-engine" not in argv:
                engine.stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
