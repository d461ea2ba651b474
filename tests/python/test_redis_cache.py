"""Shared caches on a real redis-server: ExactCache(backend=...) and SemanticCache(backend=...).

The server comes from redis_fixture (a free local port, no persistence); every test that needs
it is skipped when redis-server is not installed.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import warnings

import pytest

import thrifty
from redis_fixture import REDIS_SERVER, SKIP_REASON, RedisServer, free_port
from thrifty import CacheBackendWarning

N_PROCS = 4
QUERIES = [
    "how do I reset my password",
    "what are your opening hours on sunday",
    "can I pay with a credit card",
    "where is my parcel right now",
]


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# --- URLs (no server needed) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:6379", "scheme must be redis://"),
        ("redis://localhost:99999/0", "port must be in 1..65535"),
        ("redis://localhost:6379/x", "database after '/' must be an integer"),
        ("redis://localhost:6379/0?timeout=0", "timeout must be a number of seconds > 0"),
        ("redis://localhost:6379/0?colour=blue", "unknown option 'colour'"),
        ("redis://localhost:6379/0?prefix=a{b}", "prefix must be"),
        ("redis://alice@localhost:6379/0", "credentials need a password"),
        ("redis://:6379/0", "host is empty"),
        ("unix://relative.sock", "absolute socket path"),
    ],
)
def test_bad_urls_raise_clear_errors(url, message):
    with pytest.raises(thrifty.InvalidArgumentError, match=message) as info:
        thrifty.ExactCache(backend=url)
    assert isinstance(info.value, ValueError)
    with pytest.raises(thrifty.InvalidArgumentError, match=message):
        thrifty.SemanticCache(thrifty.HashingEmbedder(), backend=url)


def test_bad_url_errors_never_echo_the_password():
    with pytest.raises(thrifty.InvalidArgumentError) as info:
        thrifty.ExactCache(backend="redis://bob:hunter2@localhost:6379/0?bogus=1")
    assert "hunter2" not in str(info.value)
    assert "bob:***@" in str(info.value)


def test_tls_urls_explain_that_this_hiredis_has_no_tls():
    with pytest.raises(thrifty.UnimplementedError, match="hiredis 0.14.1, which has no TLS"):
        thrifty.ExactCache(backend="rediss://localhost:6380/0")


def test_memory_limits_are_rejected_with_a_redis_backend():
    with pytest.raises(thrifty.InvalidArgumentError, match="maxmemory"):
        thrifty.ExactCache(max_entries=10, backend="redis://127.0.0.1:1/0")


def test_unreachable_server_warns_and_passes_through():
    port = free_port()  # nothing listens there
    with pytest.warns(CacheBackendWarning, match="unreachable"):
        cache = thrifty.ExactCache(backend=f"redis://127.0.0.1:{port}/0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cache.put("k", "v")
        assert cache.get("k") is None
        assert cache.get_many(["k", "j"]) == [None, None]
        assert cache.delete("k") is False
        assert "k" not in cache
    stats = cache.stats()
    assert stats["redis"]["failed_gets"] >= 3
    assert stats["redis"]["dropped_writes"] >= 2
    assert stats["redis"]["state"] in ("open", "half_open")


# --- exact cache -----------------------------------------------------------------------------


def test_exact_round_trip_keeps_types_and_metadata(redis_server):
    cache = thrifty.ExactCache(backend=redis_server.url())
    cache.put("k1", "text", namespace="t", cost_usd=0.25, model="gpt-x", usage={"in": 3})
    cache.put("k2", b"\x00bytes", namespace="t")
    assert cache.get("k1", namespace="t") == "text"
    assert cache.get("k2", namespace="t") == b"\x00bytes"
    entry = cache.get_entry("k1", namespace="t")
    assert entry["model"] == "gpt-x" and entry["usage"] == {"in": 3}
    assert entry["cost_usd"] == 0.25 and entry["expires_at"] is None
    assert ("t", "k1") in cache and "k1" not in cache
    assert len(cache) == 2
    stats = cache.stats()
    assert stats["hits"] == 3 and stats["saved_usd"] == 0.5
    assert stats["backend"] == "redis" and stats["redis"]["state"] == "closed"
    assert cache.delete("k1", namespace="t") is True
    assert cache.get("k1", namespace="t") is None
    cache.clear()
    assert len(cache) == 0


def test_exact_batches_run_in_one_round_trip(redis_server):
    cache = thrifty.ExactCache(backend=redis_server.url())
    cache.put_many([(f"k{i}", f"v{i}") for i in range(100)], namespace="n")
    before = cache.stats()["redis"]["round_trips"]
    values = cache.get_many([f"k{i}" for i in range(100)] + ["missing"], namespace="n")
    assert values == [f"v{i}" for i in range(100)] + [None]
    assert cache.stats()["redis"]["round_trips"] == before + 1
    with pytest.raises(TypeError, match="key must be str"):
        cache.get_many([1, 2])
    with pytest.raises(TypeError, match=r"\(key, value\) tuples"):
        cache.put_many(["k"])


def test_exact_keys_use_a_namespace_hash_tag(redis_server):
    redis = pytest.importorskip("redis")
    cache = thrifty.ExactCache(backend=redis_server.url(prefix="app1"))
    cache.put("abc", "v", namespace="tenant-a")
    cache.put("abc", "v", namespace="")
    cache.put("abc", "v", namespace="we{ird}")
    keys = sorted(k.decode() for k in redis.Redis(port=redis_server.port).keys("*"))
    assert keys[0].startswith("app1:{#") and keys[0].endswith("}:x:abc")
    assert keys[1:] == ["app1:{tenant-a}:x:abc", "app1:{~}:x:abc"]


def test_exact_namespaces_and_prefixes_are_isolated(redis_server):
    a = thrifty.ExactCache(backend=redis_server.url(prefix="app-a"))
    b = thrifty.ExactCache(backend=redis_server.url(prefix="app-b"))
    a.put("k", "tenant one", namespace="one")
    assert a.get("k", namespace="two") is None
    assert a.get("k") is None
    assert b.get("k", namespace="one") is None
    b.clear()  # clears app-b only
    assert a.get("k", namespace="one") == "tenant one"


def test_exact_ttl_expires_in_redis(redis_server):
    cache = thrifty.ExactCache(ttl_seconds=0.3, backend=redis_server.url())
    cache.put("default-ttl", "v")
    cache.put("own-ttl", "v", ttl_seconds=60)
    cache.put("forever", "v", ttl_seconds=float("inf"))
    assert cache.get_entry("own-ttl")["expires_at"] is not None
    assert cache.get_entry("forever")["expires_at"] is None
    assert wait_for(lambda: cache.get("default-ttl") is None)
    assert cache.get("own-ttl") == "v" and cache.get("forever") == "v"
    with pytest.raises(thrifty.InvalidArgumentError, match="ttl_seconds must be > 0"):
        cache.put("k", "v", ttl_seconds=0)


def test_snapshots_are_for_the_memory_backend(redis_server, tmp_path):
    cache = thrifty.ExactCache(backend=redis_server.url())
    with pytest.raises(thrifty.UnimplementedError, match="persists through Redis"):
        cache.save(tmp_path / "x")


def test_acl_user_with_password(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(
        tmp_path / "acl",
        args=["--user", "default", "off", "--user", "alice", "on", ">s3cret", "~*", "&*", "+@all"],
    ).start()
    try:
        cache = thrifty.ExactCache(backend=server.url(auth="alice:s3cret@"))
        cache.put("k", "v")
        assert cache.get("k") == "v"
        # Percent-encoded password characters are decoded.
        with pytest.raises(thrifty.PermissionDeniedError, match="alice") as info:
            thrifty.ExactCache(backend=server.url(auth="alice:wr%6Fng@"))
        assert "wrong" not in str(info.value)
        with pytest.raises(thrifty.PermissionDeniedError, match="NOAUTH"):
            thrifty.SemanticCache(thrifty.HashingEmbedder(), backend=server.url())
    finally:
        server.stop()


# --- Redis going away ------------------------------------------------------------------------


def test_killing_redis_mid_run_only_passes_through_then_sharing_resumes(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(tmp_path / "r").start()
    url = server.url(breaker_cooldown=0.2, timeout=0.5)
    emb = thrifty.HashingEmbedder()
    try:
        exact = thrifty.ExactCache(backend=url)
        other = thrifty.ExactCache(backend=url)
        sem_a = thrifty.SemanticCache(emb, backend=url)
        sem_b = thrifty.SemanticCache(emb, backend=url)
        exact.put("k", "v")
        assert other.get("k") == "v"

        server.kill()
        with pytest.warns(CacheBackendWarning, match="circuit breaker is open"):
            for i in range(50):  # no call raises
                assert exact.get("k") is None
                exact.put(f"k{i}", "v")
                assert exact.get_many(["k", "j"]) == [None, None]
                sem_a.put(f"question number {i}", "answer")
        assert sem_a.get("question number 3") is not None  # the local index still serves
        assert sem_b.sync(0.2) is False
        stats = exact.stats()["redis"]
        assert stats["breaker_opens"] >= 1 and stats["rejected"] > 0
        assert stats["failed_gets"] >= 50 and stats["dropped_writes"] >= 1
        assert sem_a.stats()["redis"]["dropped_writes"] >= 1

        server.start()  # same port, empty (no persistence)
        with pytest.warns(CacheBackendWarning, match="reachable again"):
            assert wait_for(lambda: (exact.put("k", "again"), other.get("k"))[1] == "again")
            assert exact.stats()["redis"]["state"] == "closed"
            sem_a.put("is sharing back after the restart", "yes")
            assert wait_for(lambda: sem_b.get("is sharing back after the restart") is not None)
    finally:
        server.stop()


# --- semantic cache --------------------------------------------------------------------------


def test_semantic_entries_reach_other_caches_and_new_ones_bootstrap(redis_server):
    url = redis_server.url()
    emb = thrifty.HashingEmbedder()
    a = thrifty.SemanticCache(emb, backend=url)
    b = thrifty.SemanticCache(emb, backend=url)
    a.put(QUERIES[0], "use the reset link", namespace="shop", cost_usd=0.01, model="m")
    a.put(QUERIES[1], b"9 to 5", namespace="shop", context="faq")
    assert b.sync(5.0)
    hit = b.get(QUERIES[0], namespace="shop")
    assert hit.response == "use the reset link" and hit.model == "m" and hit.cost_usd == 0.01
    assert b.get(QUERIES[1], namespace="shop", context="faq").response == b"9 to 5"
    assert b.get(QUERIES[1], namespace="shop") is None  # other context
    assert b.get(QUERIES[0], namespace="bank") is None  # other namespace
    late = thrifty.SemanticCache(emb, backend=url)  # bootstraps from the stream
    assert late.sync(5.0)
    assert late.get(QUERIES[0], namespace="shop") is not None
    assert late.stats()["redis"]["applied"] == 2

    a.delete(QUERIES[0], namespace="shop")
    assert b.sync(5.0) and b.get(QUERIES[0], namespace="shop") is None
    b.clear()
    assert a.sync(5.0) and len(a) == 0


def test_semantic_ttl_propagates_as_an_absolute_expiry(redis_server):
    emb = thrifty.HashingEmbedder()
    a = thrifty.SemanticCache(emb, backend=redis_server.url())
    b = thrifty.SemanticCache(emb, backend=redis_server.url())
    a.put(QUERIES[2], "yes", ttl_seconds=0.4)
    assert b.sync(5.0)
    assert b.get(QUERIES[2]) is not None
    assert wait_for(lambda: b.get(QUERIES[2]) is None and a.get(QUERIES[2]) is None)
    late = thrifty.SemanticCache(emb, backend=redis_server.url())
    assert late.sync(5.0) and late.get(QUERIES[2]) is None


def test_semantic_caches_with_other_embedders_do_not_mix(redis_server):
    a = thrifty.SemanticCache(thrifty.HashingEmbedder(dim=64), backend=redis_server.url())
    b = thrifty.SemanticCache(thrifty.HashingEmbedder(dim=128), backend=redis_server.url())
    a.put(QUERIES[0], "x")
    assert b.sync(5.0) and len(b) == 0
    assert a.stats()["redis"]["stream"] != b.stats()["redis"]["stream"]


# --- four processes --------------------------------------------------------------------------


def _worker(url, index, barrier, results):
    import thrifty

    exact = thrifty.ExactCache(backend=url)
    sem = thrifty.SemanticCache(thrifty.HashingEmbedder(), backend=url)
    exact.put(f"key-{index}", f"value-{index}", namespace="shared", cost_usd=1.0)
    sem.put(QUERIES[index], f"answer-{index}", namespace="shared")
    barrier.wait(timeout=60)
    exact_hits = [exact.get(f"key-{i}", namespace="shared") for i in range(N_PROCS)]
    synced = sem.sync(10.0)
    sem_hits = [sem.get(q, namespace="shared") for q in QUERIES]
    results.put(
        (
            index,
            exact_hits,
            synced,
            [h.response if h else None for h in sem_hits],
            exact.stats()["saved_usd"],
        )
    )


def test_four_processes_share_exact_and_semantic_hits(redis_server):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(redis_server.url(timeout=1), i, barrier, results))
        for i in range(N_PROCS)
    ]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(got) == N_PROCS
    for index, exact_hits, synced, sem_hits, saved in got:
        assert exact_hits == [f"value-{i}" for i in range(N_PROCS)], index
        assert synced, index
        assert sem_hits == [f"answer-{i}" for i in range(N_PROCS)], index
        assert saved == N_PROCS


def test_a_hung_redis_is_bounded_by_the_timeout_then_the_breaker(redis_server):
    import os
    import signal

    cache = thrifty.ExactCache(backend=redis_server.url(timeout=0.05))
    cache.put("k", "v")
    os.kill(redis_server.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        with pytest.warns(CacheBackendWarning, match="circuit breaker is open"):
            for _ in range(10):
                assert cache.get("k") is None
                cache.put("k2", "v")
        stats = cache.stats()["redis"]
        assert stats["timeouts"] >= 3 and stats["state"] == "open" and stats["rejected"] > 0
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)


def test_a_full_redis_drops_writes_without_raising(redis_server):
    redis = pytest.importorskip("redis")
    admin = redis.Redis(port=redis_server.port)
    cache = thrifty.ExactCache(backend=redis_server.url())
    cache.put("small", "fits")
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", admin.info("memory")["used_memory"] + 64 * 1024)
    for i in range(20):
        cache.put(f"big-{i}", "x" * 100_000)  # OOM replies: dropped, no exception
    stats = cache.stats()["redis"]
    assert stats["dropped_writes"] > 0 and stats["reply_errors"] > 0
    assert stats["state"] == "closed"  # the server answered: not a connectivity failure
    assert cache.get("small") == "fits"


def _churn_worker(url, index, started, restarted, results):
    import warnings

    import thrifty

    warnings.simplefilter("ignore")  # CacheBackendWarning is expected here
    errors, hits_after_restart = [], 0
    try:
        exact = thrifty.ExactCache(backend=url)
        sem = thrifty.SemanticCache(thrifty.HashingEmbedder(), backend=url)
        started.wait(timeout=60)
        deadline = time.monotonic() + 60
        i = 0
        while time.monotonic() < deadline:
            i += 1
            key = f"churn-{index}-{i % 50}"
            try:
                exact.put(key, "v")
                exact.get(key)
                exact.get_many([key, "churn-0-1"])
                sem.put(f"{QUERIES[index]} variant {i % 20}", "a")
                if restarted.is_set():
                    peer = f"churn-{(index + 1) % N_PROCS}-{i % 50}"
                    hits_after_restart += exact.get(peer) is not None
                    if hits_after_restart >= 5:
                        break
            except Exception as error:  # noqa: BLE001 - the test counts any exception
                errors.append(repr(error))
            time.sleep(0.002)
    except Exception as error:  # noqa: BLE001
        errors.append(repr(error))
    results.put((index, errors, hits_after_restart))


def test_four_processes_see_no_errors_while_redis_dies_and_comes_back(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(tmp_path / "r").start()
    url = server.url(breaker_cooldown=0.2, timeout=0.5)
    ctx = mp.get_context("spawn")
    started, restarted, results = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_churn_worker, args=(url, i, started, restarted, results))
        for i in range(N_PROCS)
    ]
    try:
        for p in procs:
            p.start()
        started.set()
        time.sleep(1.0)
        server.kill()  # mid-run
        time.sleep(1.0)
        server.start()
        restarted.set()
        got = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
    finally:
        server.stop()
    for index, errors, hits_after_restart in got:
        assert errors == [], (index, errors[:3])
        assert hits_after_restart >= 5, index  # sharing resumed after the restart
