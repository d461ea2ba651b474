"""Binding contract of the embedders: numpy in and out, errors, the GIL; WordLlama agreement."""

import importlib.util
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import thrifty
from thrifty import _core

HAS_WORDLLAMA = all(
    importlib.util.find_spec(name) is not None
    for name in ("wordllama", "tokenizers", "safetensors")
)
needs_wordllama = pytest.mark.skipif(
    not HAS_WORDLLAMA, reason="needs the embeddings extra: pip install 'thrifty[embeddings]'"
)

QUESTIONS = [
    "How can I learn to play the guitar?",
    "What is the best way to learn guitar?",
    "How can I reset my bank account password?",
    "",
]


def unit_rows(vectors):
    return np.linalg.norm(vectors, axis=1)


# --- HashingEmbedder --------------------------------------------------------------------------


def test_hashing_returns_float32_arrays_with_unit_rows():
    embedder = thrifty.HashingEmbedder()
    assert isinstance(embedder, thrifty.Embedder)
    assert embedder.dim == 256
    assert embedder.name == "hashing(dim=256)"
    assert repr(embedder) == "<thrifty.HashingEmbedder hashing(dim=256)>"

    one = embedder.embed("How do I learn Python?")
    assert one.shape == (256,) and one.dtype == np.float32
    assert np.linalg.norm(one) == pytest.approx(1.0, abs=1e-6)

    batch = embedder.embed_batch(QUESTIONS)
    assert batch.shape == (4, 256) and batch.dtype == np.float32
    assert batch.flags["C_CONTIGUOUS"] and batch.flags["OWNDATA"]  # filled in place, no copy
    np.testing.assert_allclose(unit_rows(batch[:3]), 1.0, atol=1e-6)
    assert not batch[3].any()  # empty text -> zero vector
    assert embedder.embed_batch([]).shape == (0, 256)
    assert embedder.embed_batch(iter(["a b", "c d"])).shape == (2, 256)  # any iterable


def test_hashing_batch_equals_single_and_is_deterministic_across_processes():
    embedder = thrifty.HashingEmbedder(dim=64)
    batch = embedder.embed_batch(QUESTIONS)
    for text, row in zip(QUESTIONS, batch):
        np.testing.assert_array_equal(embedder.embed(text), row)
    # Vectors are shared through Redis by many processes: they must not depend on the process.
    code = (
        "import sys, thrifty; sys.stdout.write(thrifty.HashingEmbedder(dim=64)"
        ".embed(sys.argv[1]).tobytes().hex())"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, QUESTIONS[0]], capture_output=True, text=True, check=True
    ).stdout
    assert bytes.fromhex(other) == batch[0].tobytes()


def test_hashing_paraphrases_score_higher_than_unrelated_questions():
    q, paraphrase, unrelated, _ = thrifty.HashingEmbedder().embed_batch(QUESTIONS)
    assert q @ paraphrase > q @ unrelated + 0.3


def test_hashing_validates_its_options():
    with pytest.raises(thrifty.InvalidArgumentError, match=r"dim must be in \[8, 8192\], got 4"):
        thrifty.HashingEmbedder(4)
    with pytest.raises(ValueError, match=r"got -1"):
        thrifty.HashingEmbedder(dim=-1)
    with pytest.raises(thrifty.InvalidArgumentError, match="char_weight must be a finite number"):
        thrifty.HashingEmbedder(char_weight=float("nan"))
    with pytest.raises(thrifty.InvalidArgumentError, match="char_ngram_min=5, char_ngram_max=4"):
        thrifty.HashingEmbedder(char_ngram_min=5)
    custom = thrifty.HashingEmbedder(512, bigram_weight=0.0)
    assert custom.name.startswith("hashing(dim=512,words=1,bigrams=0,")


def test_embed_batch_rejects_what_is_not_a_list_of_str():
    embedder = thrifty.HashingEmbedder()
    with pytest.raises(TypeError, match=r"texts must be a list of str, got str; use embed\(text\)"):
        embedder.embed_batch("one text")
    with pytest.raises(TypeError, match=r"texts\[1\] is int, expected str"):
        embedder.embed_batch(["a", 2])
    with pytest.raises(TypeError):
        embedder.embed(b"bytes")
    with pytest.raises(TypeError):
        thrifty.Embedder()  # abstract


def spin(until):
    """Timestamps of a trivial Python loop run until `until()` is true."""
    stamps = []
    while not until():
        stamps.append(time.perf_counter())
    return stamps


def test_embed_batch_releases_the_gil():
    # While a thread embeds a large batch in C++, this thread must keep running Python code at
    # a good fraction of its own speed (holding the GIL would leave it a few percent at best).
    embedder = thrifty.HashingEmbedder()
    texts = [f"question number {i} about topic {i % 97} and more words" for i in range(60_000)]
    alone_until = time.perf_counter() + 0.1
    baseline = len(spin(lambda: time.perf_counter() > alone_until)) / 0.1
    window = {}
    done = threading.Event()

    def work():
        window["start"] = time.perf_counter()
        embedder.embed_batch(texts)
        window["end"] = time.perf_counter()
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    stamps = spin(done.is_set)
    worker.join()
    margin = 0.02  # a few GIL switch intervals at each end
    inside = window["end"] - window["start"] - 2 * margin
    assert inside > 0.05, "the batch was too quick to tell"
    count = sum(1 for t in stamps if window["start"] + margin < t < window["end"] - margin)
    assert count / inside > 0.2 * baseline, (count / inside, baseline)


# --- CallableEmbedder -------------------------------------------------------------------------


def test_callable_embedder_normalizes_float32_float64_and_lists():
    calls = []

    def fn(texts):
        calls.append(texts)
        return np.array([[3.0, 4.0, 0.0]] * len(texts))  # float64

    embedder = thrifty.CallableEmbedder(fn, 3)
    assert isinstance(embedder, thrifty.Embedder)
    assert embedder.dim == 3 and embedder.fn is fn
    assert (
        embedder.name
        == "callable(test_callable_embedder_normalizes_float32_float64_and_lists.<locals>.fn,dim=3)"
    )
    out = embedder.embed_batch(["a", "b"])
    assert out.dtype == np.float32 and out.shape == (2, 3)
    np.testing.assert_allclose(out, [[0.6, 0.8, 0.0]] * 2, rtol=1e-6)
    assert calls == [["a", "b"]]

    as_list = thrifty.CallableEmbedder(lambda t: [[0.0, 2.0]] * len(t), 2, name="mine")
    assert as_list.name == "mine"
    np.testing.assert_array_equal(as_list.embed("x"), [0.0, 1.0])
    strided = thrifty.CallableEmbedder(
        lambda t: np.zeros((len(t), 4), np.float32)[:, ::2] + np.float32(1), 2
    )
    np.testing.assert_allclose(strided.embed("x"), [2**-0.5] * 2, rtol=1e-6)
    zero = thrifty.CallableEmbedder(lambda t: np.zeros((len(t), 2)), 2)
    assert not zero.embed("x").any()  # a zero row stays zero
    assert embedder.embed_batch([]).shape == (0, 3) and len(calls) == 1  # fn is not called


@pytest.mark.parametrize(
    "result,message",
    [
        (np.ones((1, 3)), r"fn returned shape \(1, 3\) for 1 texts, expected \(1, 4\)"),
        (np.ones(4), r"fn returned shape \(4,\) for 1 texts, expected \(1, 4\)"),
        (np.full((1, 4), np.nan), r"non-finite value \(nan\) at row 0, column 0"),
        (
            np.array([[1.0, np.inf, 0, 0]], np.float32),
            r"non-finite value \(inf\) at row 0, column 1",
        ),
        (None, r"must return an array-like of shape \(1, 4\).*got NoneType"),
        ("vector", r"must return an array-like of shape \(1, 4\).*got str"),
        ([[1, 2, 3, 4]], r"must return float32 or float64 values, got list of dtype int64"),
        (np.ones((1, 4), np.float16), r"must return float32 or float64 values.*float16"),
    ],
)
def test_callable_embedder_rejects_bad_results(result, message):
    embedder = thrifty.CallableEmbedder(lambda texts: result, 4)
    with pytest.raises(thrifty.InvalidArgumentError, match=message):
        embedder.embed("x")


def test_callable_embedder_propagates_the_original_exception():
    class ModelDown(Exception):
        pass

    error = ModelDown("GPU fell off the bus")

    def fn(texts):
        raise error

    embedder = thrifty.CallableEmbedder(fn, 8)
    with pytest.raises(ModelDown) as raised:
        embedder.embed_batch(["x"])
    assert raised.value is error
    # A later, unrelated failure on the same thread is its own error, not the stale one.
    with pytest.raises(thrifty.InvalidArgumentError, match="shape"):
        thrifty.CallableEmbedder(lambda t: np.ones((1, 2)), 8).embed("x")


def test_callable_embedder_validates_its_arguments():
    with pytest.raises(TypeError, match="fn must be callable"):
        thrifty.CallableEmbedder("not a function", 8)
    with pytest.raises(thrifty.InvalidArgumentError, match=r"dim must be in \[1, 65536\], got 0"):
        thrifty.CallableEmbedder(lambda t: None, 0)


def test_callable_embedder_reacquires_the_gil_from_worker_threads():
    embedder = thrifty.CallableEmbedder(lambda t: np.array([[len(s), 1.0] for s in t]), 2)
    results = {}

    def work(i):
        results[i] = embedder.embed_batch(["x" * i, "y"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, out in results.items():
        np.testing.assert_allclose(out[0], np.array([i, 1.0]) / np.hypot(i, 1.0), rtol=1e-6)
    assert len(results) == 8


# --- StaticEmbedder, core ---------------------------------------------------------------------


def toy_table():
    table = np.zeros((5, 4), np.float32)
    for i in range(5):
        table[i, i % 4] = i + 1
    return table


def test_static_embedder_pools_token_ids():
    embedder = _core.StaticEmbedder(toy_table(), name="toy")
    assert (embedder.dim, embedder.vocab_size, embedder.has_tokenizer) == (4, 5, False)
    out = embedder.embed_token_ids([[0, 1], np.array([0, 4, 1], np.int64), []])
    s5, s40 = 5**0.5, 40**0.5
    np.testing.assert_allclose(
        out, [[1 / s5, 2 / s5, 0, 0], [6 / s40, 2 / s40, 0, 0], [0, 0, 0, 0]], rtol=1e-6
    )
    with pytest.raises(thrifty.FailedPreconditionError, match="'toy' has no tokenizer"):
        embedder.embed("hello")
    with pytest.raises(thrifty.InvalidArgumentError, match=r"token id 5 \(text 0, position 1\)"):
        embedder.embed_token_ids([[1, 5]])
    with pytest.raises(thrifty.InvalidArgumentError, match="must be int, got float"):
        embedder.embed_token_ids([[1.0]])


def test_static_embedder_validates_the_table():
    with pytest.raises(thrifty.InvalidArgumentError, match="C-contiguous float32.*got float64"):
        _core.StaticEmbedder(toy_table().astype(np.float64))
    with pytest.raises(thrifty.InvalidArgumentError, match="not C-contiguous"):
        _core.StaticEmbedder(np.asfortranarray(np.ones((5, 4), np.float32)))
    with pytest.raises(thrifty.InvalidArgumentError, match="must be 2-D"):
        _core.StaticEmbedder(np.ones(8, np.float32))
    bad = toy_table()
    bad[2, 1] = np.inf
    with pytest.raises(thrifty.InvalidArgumentError, match="non-finite value at row 2, column 1"):
        _core.StaticEmbedder(bad)


def test_static_embedder_tokenize_callback():
    def tokenize(texts):
        return [[ord(c) - ord("a") for c in t] for t in texts]

    embedder = _core.StaticEmbedder(toy_table(), tokenize, name="toy")
    np.testing.assert_array_equal(
        embedder.embed_batch(["ab", "aeb"]), embedder.embed_token_ids([[0, 1], [0, 4, 1]])
    )
    with pytest.raises(thrifty.InvalidArgumentError, match="outside the vocabulary"):
        embedder.embed("z")

    def broken(texts):
        raise KeyError("no such token")

    with pytest.raises(KeyError, match="no such token"):
        _core.StaticEmbedder(toy_table(), broken).embed("a")
    with pytest.raises(thrifty.InvalidArgumentError, match="one id list per text"):
        _core.StaticEmbedder(toy_table(), lambda t: [[0]] * (len(t) + 1)).embed("a")


# --- StaticEmbedder, WordLlama ----------------------------------------------------------------


def test_static_embedder_names_the_extra_when_wordllama_is_missing(monkeypatch):
    from thrifty import embedders

    monkeypatch.setattr(embedders, "_package_dir", lambda name: None)
    if HAS_WORDLLAMA:
        with pytest.raises(
            thrifty.FailedPreconditionError, match=r"pip install 'thrifty\[embeddings\]'"
        ):
            thrifty.StaticEmbedder()
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers -> ImportError
    with pytest.raises(
        thrifty.FailedPreconditionError, match=r"needs the `tokenizers` package: pip install"
    ):
        thrifty.StaticEmbedder()


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@needs_wordllama
def test_static_embedder_loads_wordllama_offline(offline):
    embedder = thrifty.StaticEmbedder()
    assert isinstance(embedder, thrifty.Embedder) and isinstance(embedder, _core.StaticEmbedder)
    assert (embedder.dim, embedder.vocab_size) == (256, 32000)
    assert embedder.name == "wordllama(l2_supercat,dim=256)"
    out = embedder.embed_batch(QUESTIONS)
    assert out.shape == (4, 256) and out.dtype == np.float32
    np.testing.assert_allclose(unit_rows(out[:3]), 1.0, atol=1e-5)
    assert not out[3].any()
    assert out[0] @ out[1] > out[0] @ out[2]
    np.testing.assert_array_equal(embedder.embed(QUESTIONS[0]), out[0])
    np.testing.assert_array_equal(embedder.embed_token_ids(embedder.tokenize(QUESTIONS)), out)
    small = thrifty.StaticEmbedder(dim=64)  # Matryoshka truncation of the shipped table
    assert small.embed("hello").shape == (64,)
    with pytest.raises(thrifty.InvalidArgumentError, match=r"dim must be one of \[64, 128"):
        thrifty.StaticEmbedder(dim=100)
    with pytest.raises(thrifty.FailedPreconditionError, match="thrifty never downloads"):
        thrifty.StaticEmbedder("no_such_model")


@needs_wordllama
def test_static_embedder_agrees_with_the_wordllama_package(tmp_path, offline):
    from wordllama import WordLlama

    package = importlib.util.find_spec("wordllama").submodule_search_locations[0]
    # wordllama 0.4.0 looks for its tokenizer in `tokenizer/` but ships it in `tokenizers/`,
    # so WordLlama.load() would try to download it; hand it the shipped file through a cache.
    (tmp_path / "tokenizers").mkdir()
    shutil.copy(f"{package}/tokenizers/l2_supercat_tokenizer_config.json", tmp_path / "tokenizers")
    texts = QUESTIONS[:3] + [
        "Why is the sky blue? " * 50,  # long: no truncation on either side
        "Ünïcödé, emoji 🤖 and 数字 12345",
    ]
    for dim in (256, 64):
        reference = WordLlama.load(
            cache_dir=tmp_path,
            disable_download=True,
            dim=256,
            trunc_dim=None if dim == 256 else dim,
        ).embed(texts, norm=True)
        ours = thrifty.StaticEmbedder(dim=dim).embed_batch(texts)
        cosines = (ours * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
        assert cosines.min() >= 0.99, cosines
        np.testing.assert_allclose(ours, reference, atol=1e-5)


@needs_wordllama
def test_static_embedder_accepts_explicit_files(tmp_path):
    package = importlib.util.find_spec("wordllama").submodule_search_locations[0]
    weights = f"{package}/weights/l2_supercat_256.safetensors"
    tokenizer = f"{package}/tokenizers/l2_supercat_tokenizer_config.json"
    embedder = thrifty.StaticEmbedder(weights_path=weights, tokenizer_path=tokenizer, dim=128)
    assert embedder.name == "static(l2_supercat_256.safetensors,dim=128)"
    np.testing.assert_allclose(
        embedder.embed("hello"), thrifty.StaticEmbedder(dim=128).embed("hello"), atol=1e-6
    )
    with pytest.raises(thrifty.InvalidArgumentError, match="pass both"):
        thrifty.StaticEmbedder(weights_path=weights)
    with pytest.raises(thrifty.FailedPreconditionError, match="no such file"):
        thrifty.StaticEmbedder(weights_path=tmp_path / "x", tokenizer_path=tokenizer)
