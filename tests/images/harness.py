"""Shared pieces of the image harness: names, the security flags, docker
helpers, service containers and the report of what was measured."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import infra
from httpc import request

REPO = infra.REPO
SERVICES = ("user_service", "tweet_service", "feed_service")
IMAGE_PREFIX = "chirp"
IMAGE_TAG = os.environ.get("CHIRP_TEST_IMAGE_TAG", "test")

# Exactly what the Helm chart's securityContext amounts to: non-root numeric
# user, read-only root filesystem, no capabilities, no privilege escalation,
# and /tmp as the one writable place (an emptyDir there, a tmpfs here).
SECURITY_FLAGS = [
    "--read-only",
    "--user", "10001:10001",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--tmpfs", "/tmp",
]

# What the harness measured, printed at the end of the run (and written to
# docker/README.md with CHIRP_UPDATE_IMAGE_REPORT=1).
REPORT: dict = {}
SESSION = uuid.uuid4().hex[:8]
LABEL = f"chirp.images-test={SESSION}"


def image_ref(service: str) -> str:
    return f"{IMAGE_PREFIX}/{service.replace('_', '-')}:{IMAGE_TAG}"


def docker(*args, check=True, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def inspect(ref: str, kind: str = "image") -> dict:
    return json.loads(docker(kind, "inspect", ref).stdout)[0]


def run_container(image: str, *command: str, env: dict, name: str | None = None,
                  detach: bool = False, extra: list[str] | None = None,
                  timeout: int = 300) -> subprocess.CompletedProcess:
    args = ["run", "--network", "host", *SECURITY_FLAGS, "--label", LABEL]
    if detach:
        args.append("--detach")
    else:
        args.append("--rm")
    if name:
        args += ["--name", name]
    for k, v in env.items():
        args += ["--env", f"{k}={v}"]
    args += extra or []
    args.append(image)
    args += command
    return docker(*args, check=False, timeout=timeout)


class Service:
    """A service container on the host network."""

    def __init__(self, service: str, image: str, port: int, env: dict):
        self.service, self.image, self.port = service, image, port
        self.env = {"PORT": str(port), "HOST": "127.0.0.1", **env}
        self.name = f"chirp-it-{service.replace('_', '-')}-{SESSION}-{port}"

    def start(self, extra=None) -> "Service":
        # Health probed every second here (the image says 10 s) so the test
        # need not wait; the probe command is the image's own.
        r = run_container(self.image, env=self.env, name=self.name, detach=True,
                          extra=["--health-interval", "1s", "--health-start-period", "30s",
                                 *(extra or [])])
        if r.returncode != 0:
            raise RuntimeError(f"docker run {self.service}: {r.stderr}")
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            state = inspect(self.name, "container")["State"]
            if not state["Running"]:
                raise RuntimeError(f"{self.service} container exited {state['ExitCode']}:\n{self.logs()}")
            try:
                last = request("GET", self.port, "/readyz", timeout=2)
                if last.status == 200:
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.25)
        raise RuntimeError(f"{self.service} not ready after {timeout} s (last: {last}):\n{self.logs()}")

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        r = docker("logs", "--tail", "80", self.name, check=False)
        return r.stdout + r.stderr

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


# --------------------------------------------------------------------------
def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def report_markdown() -> str:
    lines = []
    base = REPORT.get("base")
    if base:
        how = "cached" if base.get("build_s") is None else f"built in {base['build_s']} s"
        size = f", {_mb(base['size'])}" if base.get("size") else ""
        lines.append(f"- base image `{base['tag']}` ({how}{size})")
    build = REPORT.get("build")
    if build:
        lines.append(f"- `make images`: {build['make_images_s']} s "
                     f"({build['cached_steps']} build steps from the layer cache)")
    for ref, size in REPORT.get("images", {}).items():
        lines.append(f"- `{ref}`: {_mb(size)} ({size} bytes, uncompressed)")
    for k, v in REPORT.get("extra", {}).items():
        lines.append(f"- {k}: {v}")
    return "\n".join(lines)


def write_report(terminalreporter):
    if not REPORT:
        return
    text = report_markdown()
    terminalreporter.write_sep("-", "image report")
    terminalreporter.write_line(text)
    if os.environ.get("CHIRP_UPDATE_IMAGE_REPORT") == "1":
        readme = REPO / "docker" / "README.md"
        begin, end = "<!-- image-report:begin -->", "<!-- image-report:end -->"
        content = readme.read_text() if readme.exists() else ""
        if begin in content and end in content:
            head, rest = content.split(begin, 1)
            tail = rest.split(end, 1)[1]
            stamp = time.strftime("%Y-%m-%d", time.gmtime())
            readme.write_text(f"{head}{begin}\nMeasured by `make test-images` on {stamp}:\n\n"
                              f"{text}\n{end}{tail}")
            terminalreporter.write_line(f"(written to {readme})")
