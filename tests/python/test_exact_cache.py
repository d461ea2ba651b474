"""The ExactCache binding contract: types, errors, snapshots, threads and the GIL.

Core behaviour (LRU order across shards, TTL with a fake clock, corrupt and half-written
snapshots) is covered in tests/cpp/exact_cache_test.cc.
"""

import faulthandler
import math
import os
import threading
import time

import pytest

import thrifty


def test_bytes_and_str_come_back_as_the_type_stored():
    cache = thrifty.ExactCache()
    values = {
        "bytes": b"\x00\xff binary \x01",
        "empty-bytes": b"",
        "text": "héllo wörld ✓ 日本",
        "empty-text": "",
    }
    for key, value in values.items():
        cache.put(key, value)
    for key, value in values.items():
        got = cache.get(key)
        assert type(got) is type(value), key
        assert got == value, key
    # The same characters stored as str and as bytes stay distinct.
    cache.put("k", "abc")
    assert cache.get("k") == "abc"
    cache.put("k", b"abc")
    assert cache.get("k") == b"abc"


def test_get_entry_returns_value_and_metadata():
    cache = thrifty.ExactCache(ttl_seconds=3600)
    key = thrifty.request_key(
        {"model": "gpt-6-luna", "messages": [{"role": "user", "content": "hi"}]}
    )
    before = time.time()
    usage = {"input_tokens": 12, "output_tokens": 3, "details": {"cached": [1, 2]}}
    cache.put(key, "hello", model="gpt-6-luna", usage=usage, cost_usd=0.0125)
    entry = cache.get_entry(key)
    assert entry["value"] == "hello"
    assert entry["model"] == "gpt-6-luna"
    assert entry["usage"] == usage
    assert entry["cost_usd"] == 0.0125
    assert before - 1 <= entry["created_at"] <= time.time() + 1
    assert entry["expires_at"] == pytest.approx(entry["created_at"] + 3600)
    cache.put("plain", b"v")
    plain = cache.get_entry("plain")
    assert plain["usage"] is None and plain["model"] == "" and plain["cost_usd"] == 0.0
    assert cache.get_entry("absent") is None
    cache.put("forever", b"v", ttl_seconds=math.inf)
    assert cache.get_entry("forever")["expires_at"] is None


def test_stats_count_gets_evictions_bytes_and_savings():
    cache = thrifty.ExactCache(max_entries=2)
    cache.put("a", b"12345", cost_usd=0.25, model="m")
    assert cache.get("a") == b"12345"
    assert cache.get_entry("a")["value"] == b"12345"  # get_entry counts as a get
    assert cache.get("missing") is None
    cache.put("b", b"x")
    cache.put("c", b"y")  # evicts "a", the least recently used
    assert cache.stats() == {
        "hits": 2,
        "misses": 1,
        "evictions": 1,
        "expirations": 0,
        "entries": 2,
        "bytes": (1 + 1) * 2,  # key + value for "b" and "c"
        "saved_usd": 0.5,
    }
    assert "a" not in cache


def test_namespaces_isolate_the_same_key():
    cache = thrifty.ExactCache()
    cache.put("k", "default")
    cache.put("k", "tenant-1", namespace="tenant-1")
    cache.put("k", b"tenant-2", namespace="tenant-2")
    assert cache.get("k") == "default"
    assert cache.get("k", namespace="tenant-1") == "tenant-1"
    assert cache.get("k", "tenant-2") == b"tenant-2"
    assert cache.get("k", namespace="tenant-3") is None
    assert cache.delete("k", namespace="tenant-1") is True
    assert ("tenant-1", "k") not in cache
    assert ("tenant-2", "k") in cache
    assert "k" in cache
    assert len(cache) == 2


def test_lru_eviction_by_entries_and_by_bytes():
    cache = thrifty.ExactCache(max_entries=3)
    for key in "abc":
        cache.put(key, key)
    cache.get("a")
    cache.put("d", "d")
    assert [key in cache for key in "abcd"] == [True, False, True, True]

    by_bytes = thrifty.ExactCache(max_bytes=100)
    by_bytes.put("a", b"x" * 39)  # 40 bytes with the key
    by_bytes.put("b", b"x" * 39)
    by_bytes.get("a")
    by_bytes.put("c", b"x" * 39)  # 120 > 100: "b" goes
    assert ["a" in by_bytes, "b" in by_bytes, "c" in by_bytes] == [True, False, True]
    assert by_bytes.stats()["bytes"] == 80
    assert by_bytes.stats()["evictions"] == 1


def test_value_larger_than_max_bytes_raises_instead_of_being_dropped():
    cache = thrifty.ExactCache(max_bytes=64)
    cache.put("keep", "me")
    with pytest.raises(thrifty.InvalidArgumentError, match="exceeds max_bytes 64"):
        cache.put("big", b"x" * 100)
    assert cache.get("keep") == "me"
    assert "big" not in cache


def test_ttl_expires_entries_and_counts_expirations():
    cache = thrifty.ExactCache(ttl_seconds=0.05)
    cache.put("default-ttl", b"v")
    cache.put("short", b"v", ttl_seconds=0.05)
    cache.put("long", b"v", ttl_seconds=60)
    cache.put("forever", b"v", ttl_seconds=float("inf"))
    time.sleep(0.1)
    assert cache.get("default-ttl") is None
    assert cache.get("short") is None
    assert cache.get("long") == b"v"
    assert cache.get("forever") == b"v"
    stats = cache.stats()
    assert stats["expirations"] == 2
    assert stats["misses"] == 2
    assert stats["hits"] == 2
    assert stats["entries"] == 2
    assert cache.ttl_seconds == pytest.approx(0.05)


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda c: c.put(b"key", b"v"), TypeError, "key must be str, got bytes"),
        (lambda c: c.put(1, b"v"), TypeError, "key must be str, got int"),
        (lambda c: c.get(None), TypeError, "key must be str, got NoneType"),
        (lambda c: c.get("k", namespace=1), TypeError, "namespace must be str"),
        (lambda c: c.put("k", 1), TypeError, "value must be bytes or str, got int"),
        (
            lambda c: c.put("k", bytearray(b"v")),
            TypeError,
            "value must be bytes or str, got bytearray",
        ),
        (lambda c: c.put("k", {"a": 1}), TypeError, "value must be bytes or str, got dict"),
        (lambda c: c.put("k", "v", usage=[1, 2]), TypeError, "usage must be a dict"),
        (lambda c: c.put("k", "v", model=None), TypeError, "model must be str"),
        (
            lambda c: c.put("k", "v", ttl_seconds=-1),
            thrifty.InvalidArgumentError,
            "ttl_seconds must be > 0",
        ),
        (
            lambda c: c.put("k", "v", ttl_seconds=0),
            thrifty.InvalidArgumentError,
            "ttl_seconds must be > 0",
        ),
        (lambda c: c.put("k", "v", ttl_seconds=math.nan), thrifty.InvalidArgumentError, "got nan"),
        (lambda c: c.put("k", "v", cost_usd=-0.5), thrifty.InvalidArgumentError, "cost_usd"),
        (lambda c: 1 in c, TypeError, "expected a str key or a (namespace, key) tuple"),
        (lambda c: c.load(123), TypeError, "os.PathLike"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, message):
    cache = thrifty.ExactCache()
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(cache)
    assert len(cache) == 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"max_entries": 0}, "max_entries must be > 0, got 0"),
        ({"max_entries": -5}, "max_entries must be > 0, got -5"),
        ({"max_bytes": 0}, "max_bytes must be > 0"),
        ({"ttl_seconds": -1.0}, "ttl_seconds must be > 0"),
    ],
)
def test_bad_limits_raise_invalid_argument(kwargs, message):
    with pytest.raises(thrifty.InvalidArgumentError, match=message) as info:
        thrifty.ExactCache(**kwargs)
    assert isinstance(info.value, ValueError)


def test_delete_contains_len_clear_and_repr():
    cache = thrifty.ExactCache(max_entries=10, max_bytes=1000, ttl_seconds=30)
    assert repr(cache) == "ExactCache(entries=0, max_entries=10, max_bytes=1000, ttl_seconds=30.0)"
    assert (cache.max_entries, cache.max_bytes, cache.ttl_seconds) == (10, 1000, 30.0)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert len(cache) == 2 and "a" in cache and "z" not in cache
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert "a" not in cache
    cache.get("b")
    cache.clear()
    assert len(cache) == 0 and cache.get("b") is None
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["entries"], stats["bytes"]) == (1, 1, 0, 0)
    unlimited = thrifty.ExactCache()
    assert (unlimited.max_entries, unlimited.max_bytes, unlimited.ttl_seconds) == (None, None, None)


def test_save_and_load_round_trip(tmp_path):
    cache = thrifty.ExactCache()
    cache.put("text", "héllo", model="gpt-6-luna", usage={"input_tokens": 5}, cost_usd=0.5)
    cache.put("bin", b"\x00\x01", namespace="tenant")
    cache.put("expiring", b"v", ttl_seconds=3600)
    path = tmp_path / "cache.snap"
    cache.save(path)  # os.PathLike is accepted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.snap"]

    other = thrifty.ExactCache()
    other.put("replaced", b"gone after load")
    assert other.load(str(path)) == 3
    assert "replaced" not in other
    assert other.get("text") == "héllo"
    assert other.get("bin", namespace="tenant") == b"\x00\x01"
    entry = other.get_entry("text")
    original = cache.get_entry("text")
    assert entry == original
    assert other.get_entry("expiring")["expires_at"] == cache.get_entry("expiring")["expires_at"]

    small = thrifty.ExactCache(max_entries=1)
    assert small.load(path) == 1  # keeps the most recently used entry that fits
    assert len(small) == 1 and "expiring" in small


def test_load_rejects_a_corrupt_snapshot_and_keeps_contents(tmp_path):
    source = thrifty.ExactCache()
    source.put("k", b"snapshot value")
    path = tmp_path / "cache.snap"
    source.save(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    bad = tmp_path / "bad.snap"
    bad.write_bytes(bytes(data))

    cache = thrifty.ExactCache()
    cache.put("mine", "untouched")
    with pytest.raises(thrifty.Error, match="checksum") as info:
        cache.load(bad)
    assert str(bad) in str(info.value)
    bad.write_bytes(b'{"not": "a snapshot"}')
    with pytest.raises(thrifty.InvalidArgumentError, match="not an exact-cache snapshot"):
        cache.load(bad)
    with pytest.raises(thrifty.NotFoundError, match="missing.snap"):
        cache.load(tmp_path / "missing.snap")
    assert cache.get("mine") == "untouched"
    assert len(cache) == 1


def test_threads_hammering_the_cache_keep_stats_consistent():
    cache = thrifty.ExactCache(max_entries=50)
    n_threads, n_ops = 8, 3000
    keys = [f"key-{i}" for i in range(120)]
    counts = [[0, 0] for _ in range(n_threads)]  # gets, hits per thread
    errors = []
    start = threading.Barrier(n_threads)

    def hammer(t):
        try:
            start.wait()
            for i in range(n_ops):
                key = keys[(i * 7 + t * 13) % len(keys)]
                expected = key if len(key) % 2 else key.encode()
                if i % 3 == 0:
                    cache.put(key, expected, cost_usd=0.001)
                elif i % 17 == 0:
                    cache.delete(key)
                else:
                    counts[t][0] += 1
                    got = cache.get(key)
                    if got is not None:
                        counts[t][1] += 1
                        assert got == expected and type(got) is type(expected)
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stats = cache.stats()
    gets = sum(c[0] for c in counts)
    hits = sum(c[1] for c in counts)
    assert stats["hits"] + stats["misses"] == gets
    assert stats["hits"] == hits
    assert stats["saved_usd"] == pytest.approx(0.001 * hits)
    assert stats["entries"] == len(cache) <= 50
    assert stats["evictions"] > 0


# Counting main-thread ticks during the call (as test_request.py does) cannot tell: a thread
# that holds the GIL in C++ still hands it over for a 5 ms switch interval before the call,
# which is ~10^5 ticks. These tests observe the call while it runs instead.


def test_save_releases_the_gil(tmp_path):
    # The temporary file exists only while save() runs in C++; this thread can see it only if
    # save() released the GIL.
    cache = thrifty.ExactCache()
    block = b"x" * (1 << 20)
    for i in range(64):
        cache.put(f"key-{i}", block)
    worker = threading.Thread(target=cache.save, args=(tmp_path / "big.snap",))
    worker.start()
    seen = []
    while worker.is_alive() and not seen:
        seen = [name for name in os.listdir(tmp_path) if ".tmp." in name]
    worker.join()
    assert seen, "never saw save()'s temporary file: save() held the GIL"
    assert os.listdir(tmp_path) == ["big.snap"]


def test_load_releases_the_gil(tmp_path):
    # load() blocks reading a FIFO until this thread writes the snapshot into it. Were the GIL
    # held, this thread could never write and the watchdog would end the run with a traceback.
    source = thrifty.ExactCache()
    source.put("k", b"v")
    source.save(tmp_path / "source.snap")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cache = thrifty.ExactCache()
    loaded = []
    worker = threading.Thread(target=lambda: loaded.append(cache.load(fifo)))
    faulthandler.dump_traceback_later(60, exit=True)
    try:
        worker.start()
        with open(fifo, "wb") as pipe:
            pipe.write((tmp_path / "source.snap").read_bytes())
        worker.join()
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert loaded == [1]
    assert cache.get("k") == b"v"
