"""What every benchmark measurement shares: processes, CPU time, a private Redis, marks, stats."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE / "tasks"
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
LINE = 18  # tasks/marks.py writes fixed-width lines


def load() -> str:
    """The machine's load average, as ``uptime`` shows it (the machine is shared)."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average: {load()}"


def summary(values: Sequence[float]) -> dict[str, float] | None:
    """Median, min and max (None when nothing was measured)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- processes -------------------------------------------------------------------------

def serve_web(root: Path, env: dict[str, str], *extra: str,
              log: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``litequeue serve-web`` on a free port, from ``root``; returns it and its base URL once
    ``/livez`` answers. Its output goes to ``log`` (appended), else nowhere."""
    import urllib.request

    port = free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "litequeue", "serve-web", "--port", str(port), *extra],
                            env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/livez", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("serve-web did not answer" + (f"; see {log}" if log else ""))


def tree_ticks(pid: int) -> int:
    """utime + stime (clock ticks) of ``pid`` and every live descendant."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total


def tree_wakeups(pid: int) -> int:
    """Voluntary context switches (each a sleep the thread woke from) of every thread of
    ``pid`` and of its live descendants."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError, StopIteration, ValueError):
                    status = Path(f"/proc/{p}/task/{task}/status").read_text()
                    total += int(next(line.split()[1] for line in status.splitlines()
                                      if line.startswith("voluntary_ctxt_switches")))
    return total


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its live descendants."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for p in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * page
    return total


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


class Consumer:
    """A consumer command run in its own process group (so it and its children stop together)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.log = open(cwd / "consumer.log", "ab")  # noqa: SIM115 - closed in stop()
        self.started = time.time()
        self.proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever the group left behind (worker processes) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.log.close()


class Driver:
    """A warm producer (``driver.py``) for one system."""

    def __init__(self, module: str, env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "driver.py"), module], env=env, cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        first = self._read()
        if first != "ready":
            raise RuntimeError(f"driver for {module} did not start: {first!r}")

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"driver exited ({self.proc.poll()})")
        return line

    def ask(self, command: str) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if answer.startswith("error"):
            raise RuntimeError(answer)
        return float(answer)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- marks: one line per job run ---------------------------------------------------------

class Marks:
    """The file every task appends its start time to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def count(self) -> int:
        return os.path.getsize(self.path) // LINE

    def times(self, start: int = 0) -> list[float]:
        with open(self.path, "rb") as fh:
            fh.seek(start * LINE)
            data = fh.read()
        return [float(x) for x in data.split()]

    def wait_count(self, n: int, timeout: float, poll: float = 0.001, alive: Consumer | None = None) -> bool:
        """Wait until ``n`` jobs ran; False on timeout or if the consumer died."""
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline or (alive is not None and not alive.alive()):
                return False
            time.sleep(poll)
        return True


# -- a Redis of our own -------------------------------------------------------------------

class RedisServer:
    """``redis-server`` on a free port in a temp dir, no persistence; killed by ``stop``.

    Never the machine's Redis: the port is a fresh one and nothing else knows it.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lqbench-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def _command(self, *parts: str) -> bytes:
        payload = f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(payload.encode())
            return s.recv(1024)

    def ping(self) -> bool:
        try:
            return self._command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        self._command("FLUSHALL")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def workdir(base: str | None, name: str, keep: bool = False) -> Iterator[Path]:
    """A fresh folder for one measurement's databases, removed afterwards unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=f"lqbench-{name}-", dir=base))
    try:
        yield path
    finally:
        if keep:
            print(f"kept: {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)
