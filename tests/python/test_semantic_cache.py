import threading

import numpy as np
import pytest

import thrifty


@pytest.fixture
def cache():
    return thrifty.SemanticCache(thrifty.HashingEmbedder(dim=256), threshold=0.8)


def unit(vector):
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_paraphrase_hits_and_unrelated_misses(cache):
    cache.put(
        "How do I reset my password?", "Use the 'Forgot password' link.", cost_usd=0.002, model="m"
    )
    hit = cache.get("How do I reset my password")
    assert hit is not None
    assert hit.response == "Use the 'Forgot password' link."
    assert hit.matched_query == "How do I reset my password?"
    assert 0.8 <= hit.similarity <= 1.0 and hit.model == "m" and hit.cost_usd == 0.002
    assert cache.get("What is the capital of France?") is None
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["entries"]) == (1, 1, 1)
    assert stats["saved_usd"] == pytest.approx(0.002)


def test_response_type_round_trips(cache):
    cache.put("bytes please", b"\x00\x01raw")
    cache.put("text please", "caf\u00e9")
    assert cache.get("bytes please").response == b"\x00\x01raw"
    assert cache.get("text please").response == "caf\u00e9"
    with pytest.raises(TypeError, match="response must be str or bytes"):
        cache.put("dict", {"a": 1})


def test_never_crosses_namespace_or_context(cache):
    question = "What is our refund policy?"
    cache.put(question, "tenant A policy", namespace="a", context="sys-1")
    cache.put(question, "tenant B policy", namespace="b", context="sys-1")
    cache.put(question, "A, other conversation", namespace="a", context="sys-2")
    assert cache.get(question, namespace="a", context="sys-1").response == "tenant A policy"
    assert cache.get(question, namespace="b", context="sys-1").response == "tenant B policy"
    assert cache.get(question, namespace="a", context="sys-2").response == "A, other conversation"
    assert cache.get(question, namespace="c", context="sys-1") is None
    assert cache.get(question, namespace="a") is None  # default context is its own scope
    # Adversarial: an exact duplicate in 50 other tenants, a weaker paraphrase in ours.
    for i in range(50):
        cache.put("What is the refund policy for damaged tents?", f"foreign {i}", namespace=f"t{i}")
    cache.put("Refund policy for a damaged tent?", "ours", namespace="me")
    hit = cache.get("What is the refund policy for damaged tents?", namespace="me", threshold=0.5)
    assert hit is not None and hit.response == "ours"


def test_vector_calls_validate_dtype_shape_and_values():
    cache = thrifty.SemanticCache(dim=4, threshold=0.9)
    cache.put_vector(unit([1, 0, 0, 0]), "q", "a")
    assert cache.get_vector(unit([1, 0.1, 0, 0])).response == "a"
    assert cache.get_vector(unit([0, 1, 0, 0])) is None
    with pytest.raises(ValueError, match="dtype float32, got float64"):
        cache.get_vector(np.array([1.0, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"shape \(4,\), got \(3\)"):
        cache.get_vector(np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        cache.get_vector(np.ones((4, 2), dtype=np.float32)[:, 0])
    with pytest.raises(thrifty.InvalidArgumentError, match=r"vector\[2\] is not finite"):
        cache.put_vector(np.array([1, 0, np.nan, 0], dtype=np.float32), "q", "a")
    with pytest.raises(thrifty.FailedPreconditionError, match="no embedder"):
        cache.get("text needs an embedder")


def test_bad_arguments_get_clear_errors(cache):
    with pytest.raises(thrifty.InvalidArgumentError, match="query is empty"):
        cache.get("   ")
    with pytest.raises(thrifty.InvalidArgumentError, match="threshold must be"):
        thrifty.SemanticCache(thrifty.HashingEmbedder(), threshold=1.5)
    with pytest.raises(thrifty.InvalidArgumentError, match="index must be"):
        thrifty.SemanticCache(thrifty.HashingEmbedder(), index="ivf")
    with pytest.raises(thrifty.InvalidArgumentError, match="dim=8 but the embedder makes 256-d"):
        thrifty.SemanticCache(thrifty.HashingEmbedder(dim=256), dim=8)
    with pytest.raises(thrifty.InvalidArgumentError, match="pass an embedder, or dim="):
        thrifty.SemanticCache()
    small = thrifty.SemanticCache(thrifty.HashingEmbedder(), max_bytes=2000)
    with pytest.raises(thrifty.InvalidArgumentError, match="more than max_bytes=2000"):
        small.put("big", "x" * 5000)


def test_ttl_and_snapshot(tmp_path, cache):
    cache.put("short lived", "a", ttl_seconds=0.05)
    cache.put("long lived", "b")
    import time

    time.sleep(0.1)
    assert cache.get("short lived") is None
    assert cache.get("long lived").response == "b"
    path = tmp_path / "sem.snap"
    cache.save(str(path))
    restored = thrifty.SemanticCache(thrifty.HashingEmbedder(dim=256), threshold=0.8)
    restored.load(str(path))
    assert len(restored) == 1 and restored.get("long lived").response == "b"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(thrifty.DataLossError, match="checksum|truncated"):
        restored.load(str(path))
    assert restored.get("long lived").response == "b"  # a failed load changes nothing


def test_search_lists_best_matches(cache):
    for q in ["reset password", "change password", "delete account"]:
        cache.put(q, q.upper())
    results = cache.search("how to reset my password", k=2)
    assert [q for _, q in results][0] == "reset password"
    assert results[0][0] >= results[1][0]


def test_callable_embedder_errors_propagate():
    def broken(texts):
        raise RuntimeError("embedding service down")

    cache = thrifty.SemanticCache(thrifty.CallableEmbedder(broken, dim=8))
    with pytest.raises(RuntimeError, match="embedding service down"):
        cache.get("hello")


def test_many_threads_share_one_cache_consistently(cache):
    questions = [f"question number {i} about tents" for i in range(200)]
    for q in questions[:100]:
        cache.put(q, q)
    gets_per_thread = 300
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(gets_per_thread):
                q = questions[int(rng.integers(0, 200))]
                if rng.random() < 0.1:
                    cache.put(q, q)
                else:
                    hit = cache.get(q)
                    assert hit is None or hit.response == hit.matched_query
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] + stats["puts"] - 100 == 8 * gets_per_thread


def test_best_matches_is_exact_top_k():
    rng = np.random.default_rng(0)
    stored = rng.standard_normal((500, 32)).astype(np.float32)
    queries = rng.standard_normal((20, 32)).astype(np.float32)
    sims, idx = thrifty._core._best_matches(queries, stored, k=3)
    expected = np.argsort(-(queries @ stored.T), axis=1)[:, :3]
    assert (idx == expected).all()
    assert np.allclose(sims, np.take_along_axis(queries @ stored.T, expected, axis=1), rtol=1e-5)


def test_put_vectors_bulk_matches_single_puts_and_is_all_or_nothing():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    cache = thrifty.SemanticCache(dim=32, threshold=0.99, ann_min_entries=1000)
    cache.put_vectors(
        vectors, [f"q{i}" for i in range(3000)], [f"a{i}" for i in range(3000)], namespace="n"
    )
    assert cache.stats()["ann_scopes"] == 1 and len(cache) == 3000
    found = sum(
        cache.get_vector(vectors[i], namespace="n").response == f"a{i}" for i in range(0, 3000, 7)
    )
    assert found >= 0.99 * len(range(0, 3000, 7))
    bad = vectors[:3].copy()
    bad[1, 0] = np.inf
    with pytest.raises(thrifty.InvalidArgumentError, match="not finite"):
        cache.put_vectors(bad, ["x", "y", "z"], ["1", "2", "3"], namespace="n")
    assert len(cache) == 3000  # nothing from the failed batch
    with pytest.raises(thrifty.InvalidArgumentError, match="same length"):
        cache.put_vectors(vectors[:2], ["x"], ["1", "2"])
