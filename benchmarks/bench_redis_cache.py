#!/usr/bin/env python3
"""thrifty.ExactCache(backend="redis://...") against a redis-py implementation of the same cache
(plain redis-py, pipelined, same key and value layout) on a local redis-server started here.

Measures, in one run and on the same server and data:
  1. get / put latency p50 and p99 (one call at a time, one thread);
  2. pipelined gets (batches of 100 keys): throughput from 1 and 4 Python threads;
  3. scaling across 1, 2 and 4 processes (pipelined gets, each process its own client);
  4. the fail-open cost: per-call latency while Redis is down, before the circuit breaker opens
     (server killed: connection refused; server hung with SIGSTOP: the command timeout) and once
     it is open.

    .venv/bin/python benchmarks/bench_redis_cache.py     (or `make bench`)

Targets (issue #8): >= 3x redis-py's throughput on pipelined gets from 4 Python threads;
fail-open adds <= 50 ms to a call while Redis is down and <= 1 ms once the breaker is open.
Skips (exit 0) when redis-server or redis-py is missing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import statistics
import struct
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "python"))
import thrifty  # noqa: E402
from _bench_util import print_table, write_json  # noqa: E402
from redis_fixture import REDIS_SERVER, RedisServer  # noqa: E402

try:
    import redis as redis_py
except ImportError:  # pragma: no cover
    redis_py = None

N_KEYS = 10_000
VALUE = "x" * 1024
BATCH = 100
DURATION = 2.0
ROUNDS = 3
NS = "tenant-a"
HEADER = struct.Struct("<BBdqqII")


class RedisPyExactCache:
    """The peer: the same cache (key layout, value record, PX expiry) in plain redis-py."""

    def __init__(self, url: str, prefix: str = "thrifty"):
        plain = url.split("?", 1)[0]  # thrifty's URL options are not redis-py's
        self.r = redis_py.Redis.from_url(plain, socket_timeout=1, socket_connect_timeout=1)
        self.prefix = prefix

    def key(self, key: str, namespace: str) -> str:
        return f"{self.prefix}:{{{namespace or '~'}}}:x:{key}"  # safe namespaces only

    @staticmethod
    def encode(value, cost_usd=0.0, model="", usage="", ttl=None) -> bytes:
        kind = 1 if isinstance(value, str) else 0
        data = value.encode() if kind else value
        now = int(time.time() * 1e6)
        expires = now + int(ttl * 1e6) if ttl else 0
        m, u = model.encode(), usage.encode()
        return HEADER.pack(1, kind, cost_usd, now, expires, len(m), len(u)) + m + u + data

    @staticmethod
    def decode(raw):
        if raw is None:
            return None
        _, kind, _, _, _, model_len, usage_len = HEADER.unpack_from(raw)
        data = raw[HEADER.size + model_len + usage_len :]
        return data.decode() if kind else data

    def get(self, key, namespace=""):
        return self.decode(self.r.get(self.key(key, namespace)))

    def get_many(self, keys, namespace=""):
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.get(self.key(key, namespace))
        return [self.decode(raw) for raw in pipe.execute()]

    def get_many_mget(self, keys, namespace=""):
        return [self.decode(raw) for raw in self.r.mget([self.key(k, namespace) for k in keys])]

    def put(self, key, value, namespace="", ttl_seconds=None):
        px = int(ttl_seconds * 1000) if ttl_seconds else None
        self.r.set(self.key(key, namespace), self.encode(value, ttl=ttl_seconds), px=px)


def latency_us(fn, args_list):
    samples = np.empty(len(args_list))
    clock = time.perf_counter_ns
    for i, args in enumerate(args_list):
        start = clock()
        fn(*args)
        samples[i] = clock() - start
    return float(np.percentile(samples, 50)) / 1e3, float(np.percentile(samples, 99)) / 1e3


def throughput(make_work, threads: int) -> float:
    """Keys per second over DURATION with `threads` threads; median of ROUNDS."""
    results = []
    for _ in range(ROUNDS):
        counts = [0] * threads
        stop = threading.Event()

        def run(i, stop=stop, counts=counts):
            work = make_work(i)
            n = 0
            while not stop.is_set():
                n += work()
            counts[i] = n

        pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        time.sleep(DURATION)
        stop.set()
        for t in pool:
            t.join()
        results.append(sum(counts) / DURATION)
    return statistics.median(results)


def batches(seed: int):
    rng = np.random.default_rng(seed)
    keys = [f"key-{i}" for i in range(N_KEYS)]
    return [[keys[j] for j in rng.integers(0, N_KEYS, BATCH)] for _ in range(64)]


def _process_worker(kind, url, seconds, out):
    import thrifty  # noqa: F401  (spawned interpreter)

    cache = thrifty.ExactCache(backend=url) if kind == "thrifty" else RedisPyExactCache(url)
    work_batches = batches(os.getpid())
    n = i = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        n += len(cache.get_many(work_batches[i % len(work_batches)], namespace=NS))
        i += 1
    out.put(n / seconds)


def process_scaling(kind, url, procs):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [
        ctx.Process(target=_process_worker, args=(kind, url, DURATION + 1.0, out))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    total = sum(out.get(timeout=120) for _ in workers)
    for w in workers:
        w.join()
    return total


def fail_open(server: RedisServer):
    """Per-call get latency (ms) while Redis is down: before the breaker opens, and once open.
    The URLs keep the default timeouts (connect and command: 0.03 s)."""
    rows = {}
    base = f"redis://127.0.0.1:{server.port}/0"
    warnings.simplefilter("ignore")
    # Killed server: connection refused. breaker_failures=10**6 keeps the breaker closed.
    closed = thrifty.ExactCache(backend=f"{base}?breaker_failures=1000000")
    opened = thrifty.ExactCache(backend=base)
    closed.get("key-1", namespace=NS)
    opened.get("key-1", namespace=NS)
    server.kill()
    rows["killed, breaker closed"] = latency_us(
        lambda: closed.get("key-1", namespace=NS), [()] * 2000
    )
    for _ in range(5):
        opened.get("key-1", namespace=NS)
    assert opened.stats()["redis"]["state"] == "open"
    rows["breaker open"] = latency_us(lambda: opened.get("key-1", namespace=NS), [()] * 20000)
    server.start()
    # Hung server (SIGSTOP): the connection is accepted but nothing answers: the timeout bounds it.
    hung = thrifty.ExactCache(backend=f"{base}?breaker_failures=1000000")
    hung.get("key-1", namespace=NS)
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        rows["hung, breaker closed"] = latency_us(
            lambda: hung.get("key-1", namespace=NS), [()] * 40
        )
        hung_breaker = thrifty.ExactCache(backend=base)
        first = [time.perf_counter()]
        for _ in range(3):
            hung_breaker.get("key-1", namespace=NS)
        first.append(time.perf_counter())
        assert hung_breaker.stats()["redis"]["state"] == "open"
        rows["hung, breaker open"] = latency_us(
            lambda: hung_breaker.get("key-1", namespace=NS), [()] * 20000
        )
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    return {name: {"p50_ms": p50 / 1e3, "p99_ms": p99 / 1e3} for name, (p50, p99) in rows.items()}


def main() -> int:
    if REDIS_SERVER is None or redis_py is None:
        print("bench_redis_cache: skipped (needs redis-server and redis-py)")
        return 0
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            url = server.url(timeout=1)
            ours = thrifty.ExactCache(backend=url)
            peer = RedisPyExactCache(url)
            keys = [f"key-{i}" for i in range(N_KEYS)]
            ours.put_many([(k, VALUE) for k in keys], namespace=NS)
            assert ours.get("key-7", namespace=NS) == VALUE == peer.get("key-7", namespace=NS)
            assert peer.get_many(keys[:3], namespace=NS) == ours.get_many(keys[:3], namespace=NS)

            rng = np.random.default_rng(1)
            pick = [(keys[i],) for i in rng.integers(0, N_KEYS, 5000)]
            rows = []
            for name, get, put in (
                (
                    "thrifty ExactCache (hiredis)",
                    lambda k: ours.get(k, namespace=NS),
                    lambda k: ours.put(k, VALUE, namespace="w", ttl_seconds=60),
                ),
                (
                    "redis-py (same layout)",
                    lambda k: peer.get(k, namespace=NS),
                    lambda k: peer.put(k, VALUE, namespace="w", ttl_seconds=60),
                ),
            ):
                g = latency_us(get, pick)
                p = latency_us(put, pick)
                rows.append([name, g[0], g[1], p[0], p[1]])
                result.setdefault("latency", {})[name] = {
                    "get_p50_us": g[0],
                    "get_p99_us": g[1],
                    "put_p50_us": p[0],
                    "put_p99_us": p[1],
                }
            print_table(
                "single calls, 1 thread (1 KB values, local redis-server)",
                ["implementation", "get p50 us", "get p99 us", "put p50 us", "put p99 us"],
                rows,
            )
            print()

            rows = []
            tput = {}
            impls = (
                ("thrifty", ours.get_many),
                ("redis-py", peer.get_many),
                ("redis-py MGET", peer.get_many_mget),
            )
            for threads in (1, 4):
                for name, get_many in impls:

                    def make_work(i, get_many=get_many):
                        work = batches(i)
                        state = [0]

                        def step():
                            state[0] += 1
                            return len(get_many(work[state[0] % len(work)], namespace=NS))

                        return step

                    tput[(name, threads)] = throughput(make_work, threads)
                t, r, m = (tput[(name, threads)] for name, _ in impls)
                rows.append([f"{threads} thread(s)", t, r, t / r, m, t / m])
                result.setdefault("pipelined_gets_per_s", {})[f"{threads}_threads"] = {
                    "thrifty": t,
                    "redis_py_pipeline": r,
                    "ratio": t / r,
                    "redis_py_mget": m,
                    "ratio_vs_mget": t / m,
                }
            print_table(
                f"batched gets ({BATCH} keys a call), keys/s, median of {ROUNDS} x {DURATION:.0f} s",
                ["threads", "thrifty", "redis-py pipeline", "ratio", "redis-py MGET", "ratio"],
                rows,
            )
            print("target: >= 3x redis-py with 4 threads")
            print()

            rows = []
            for procs in (1, 2, 4):
                t = process_scaling("thrifty", url, procs)
                r = process_scaling("redis-py", url, procs)
                rows.append([f"{procs} process(es)", t, r, t / r])
                result.setdefault("processes_gets_per_s", {})[str(procs)] = {
                    "thrifty": t,
                    "redis_py": r,
                    "ratio": t / r,
                }
            print_table(
                f"pipelined gets across processes (1 thread each), keys/s total, {os.cpu_count()} cores",
                ["processes", "thrifty", "redis-py", "ratio"],
                rows,
            )
            print()

            fo = fail_open(server)
            result["fail_open"] = fo
            print_table(
                "fail-open: get latency while Redis is down (default timeouts: 0.03 s)",
                ["situation", "p50 ms", "p99 ms"],
                [[name, v["p50_ms"], v["p99_ms"]] for name, v in fo.items()],
            )
            print("targets: <= 50 ms per call before the breaker opens, <= 1 ms once it is open")
        finally:
            server.stop()
    print(f"wrote {write_json('redis_cache', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
