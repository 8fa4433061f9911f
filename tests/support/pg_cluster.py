"""A private PostgreSQL cluster for one test: ``initdb`` and ``pg_ctl`` into a temp dir, on a
free loopback port, so a test may stop, crash and restart *its own* server (never the
machine's server on 5432).

``initdb`` refuses to run as root (CI runs as root): then the cluster runs as an unprivileged
user (``postgres`` when it exists, else ``nobody``), through ``runuser``/``setpriv``, and the
temp dir is chowned to it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def find_bin(name: str) -> str | None:
    """``name`` from the newest PostgreSQL under /usr/lib/postgresql, else from PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else shutil.which(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix that drops root, and the uid/gid to chown the cluster's dir to."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        user = pwd.getpwnam("postgres")
        uid, gid = user.pw_uid, user.pw_gid
    except KeyError:
        uid = gid = 65534
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("the tests run as root and setpriv is missing: initdb refuses to run as root")
    return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups"], uid, gid


class Cluster:
    """One private PostgreSQL server: :meth:`start`, :meth:`stop` (``fast``/``immediate``)."""

    def __init__(self, root: Path) -> None:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("initdb/pg_ctl not found (looked under /usr/lib/postgresql/*/bin and PATH)")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = free_port()
        self.prefix, uid, gid = _as_user()
        root.mkdir(parents=True, exist_ok=True)
        if uid is not None:
            os.chown(root, uid, gid)  # type: ignore[arg-type]
            for parent in root.parents:  # the user must reach the dir (tmp dirs are 0700)
                if str(parent) in ("/", "/tmp"):
                    break
                os.chmod(parent, os.stat(parent).st_mode | 0o011)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=self.root, env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
        if proc.returncode != 0:
            server_log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} exited {proc.returncode}: {proc.stdout}{proc.stderr}"
                               f"{server_log}")
        return proc

    def init(self) -> None:
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        # fsync off: only the server process is crashed, never the machine. synchronous_commit
        # stays on: with it off, a crash (-m immediate) loses commits the client was told of.
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                       "fsync = off\nmax_connections = 60\n"
                       "shared_buffers = 16MB\nlogging_collector = off\n")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return subprocess.run([*self.prefix, self.pg_ctl, "-D", str(self.data), "status"],
                              capture_output=True).returncode == 0

    def accepts(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


@contextlib.contextmanager
def private_cluster(root: Path) -> Iterator[Cluster]:
    """A started private cluster under ``root``, stopped (immediately) and removed afterwards."""
    cluster = Cluster(root)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        if cluster.running():
            with contextlib.suppress(Exception):
                cluster.stop("immediate")
        deadline = time.monotonic() + 10
        while cluster.accepts() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
