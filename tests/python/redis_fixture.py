"""A real redis-server for tests and benchmarks: started on a free local port in a temporary
directory, without persistence, and stopped afterwards.

    from redis_fixture import redis_server  # the pytest fixture (skips without redis-server)

RedisServer.kill() stops it abruptly (SIGKILL) and .start() brings it back on the same port, so
tests can take Redis away mid-run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Optional

import pytest

REDIS_SERVER = shutil.which("redis-server")
SKIP_REASON = "redis-server is not installed (Debian: apt-get install redis-server)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, workdir: Path, port: Optional[int] = None, args: List[str] = ()):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.args = list(args)
        self.proc: Optional[subprocess.Popen] = None

    def url(self, auth: str = "", **options) -> str:
        """The backend URL; a 1 s command timeout unless given, so a loaded CI machine does not
        trip the breaker (the 0.03 s default is for production)."""
        options = {"timeout": 1, **options}
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"redis://{auth}127.0.0.1:{self.port}/0" + (f"?{query}" if query else "")

    def start(self, timeout: float = 10.0) -> RedisServer:
        assert REDIS_SERVER, SKIP_REASON
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.workdir / "redis.log"),
            *self.args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def ping(self) -> bool:
        """True when the server answers (PING gets +PONG or an auth error)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64)[:1] in (b"+", b"-")
        except OSError:
            return False

    def kill(self) -> None:
        """Stops the server abruptly, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    """A running redis-server (no persistence) on a free port; skipped when not installed."""
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
