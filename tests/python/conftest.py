import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("THRIFTY_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> Path of a file in a temporary directory."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def thrifty_cli():
    """The command that runs the installed CLI with this interpreter."""
    return [sys.executable, "-m", "thrifty"]


def assert_releases_gil(call, min_ticks=50):
    """Runs `call` in a thread; while it runs, this thread must keep executing Python.

    The worker stamps the time right before and after the call; this thread stamps each loop
    turn. Holding the GIL, no stamp of this thread could fall inside the window except at its
    edges, so many stamps inside the middle of the window prove the release.
    """
    import threading
    import time

    window = {}
    ticks = []
    done = threading.Event()

    def worker():
        window["start"] = time.perf_counter()
        call()
        window["end"] = time.perf_counter()
        done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
    thread.join()
    start, end = window["start"], window["end"]
    margin = 0.1 * (end - start)
    inside = sum(start + margin < t < end - margin for t in ticks)
    assert inside >= min_ticks, f"only {inside} main-thread ticks inside the call's window"


# A real redis-server per test (skipped when it is not installed); see redis_fixture.py.
from redis_fixture import redis_server  # noqa: E402, F401

# --- a local server speaking the OpenAI and Anthropic wire formats, and real SDK clients on it --


@pytest.fixture
def server():
    """A FakeLLMServer (tests/python/fake_llm_server.py) on a free local port."""
    from fake_llm_server import FakeLLMServer

    with FakeLLMServer() as s:
        yield s


@pytest.fixture
def oai(server):
    """The real openai.OpenAI client pointed at `server` (the key must never reach a trace)."""
    import openai

    return openai.OpenAI(base_url=server.base_url, api_key="sk-test-secret", max_retries=0)


@pytest.fixture
def ant(server):
    """The real anthropic.Anthropic client pointed at `server`."""
    import anthropic

    return anthropic.Anthropic(
        base_url=server.anthropic_url, api_key="sk-ant-secret", max_retries=0
    )
