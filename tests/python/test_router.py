"""thrifty.Router: the binding contract and end-to-end routing behaviour."""

import numpy as np
import pytest

import thrifty


def spec(name, input_price, output_price, quality=None, **kw):
    return thrifty.ModelSpec(name, "openai", input_price, output_price, quality=quality, **kw)


@pytest.fixture
def catalog():
    def q(v):
        return {c: v for c in ("chat", "code", "math", "reasoning", "extraction", "long_context")}

    return thrifty.Catalog(
        [
            spec("cheap", 0.1, 0.4, q(0.70)),
            spec("mid", 1.0, 4.0, q(0.85)),
            spec("big", 10.0, 40.0, q(0.95)),
        ]
    )


TOPIC_A = [f"translate the word number {i} into french please" for i in range(40)]
TOPIC_B = [f"prove that the sequence {i} converges using epsilon delta" for i in range(40)]


def labeled():
    """cheap is perfect on topic A and useless on topic B; big is good on both."""
    ex = []
    for p in TOPIC_A:
        ex.append((p, {"cheap": 1.0, "mid": 1.0, "big": 1.0}, {"cheap": 50, "big": 60}))
    for p in TOPIC_B:
        ex.append((p, {"cheap": 0.0, "mid": 0.3, "big": 1.0}))
    return ex


def test_models_and_predict_shapes(catalog):
    router = thrifty.Router(catalog)
    assert router.models == ["cheap", "mid", "big"]
    q, t = router.predict(["hello", {"messages": [{"role": "user", "content": "hi"}]}])
    assert q.dtype == np.float64 and q.shape == (2, 3) and t.shape == (2, 3)
    # Unfitted: the priors.
    np.testing.assert_allclose(q[0], [0.70, 0.85, 0.95])
    q, t, c = router.predict(["hello"], with_cost=True)
    assert c.shape == (1, 3) and c[0, 0] < c[0, 1] < c[0, 2]


def test_cheapest_model_meeting_threshold(catalog):
    router = thrifty.Router(catalog)
    assert router.route("hello there", quality_threshold=0.6).model == "cheap"
    assert router.route("hello there", quality_threshold=0.8).model == "mid"
    d = router.route("hello there", quality_threshold=0.9)
    assert d.model == "big" and d.met_threshold
    assert set(d.predicted_quality) == {"cheap", "mid", "big"}
    assert d.expected_cost["cheap"] < d.expected_cost["big"]
    assert "big" in d.reason
    # Nobody reaches 0.99: the highest predicted quality.
    d = router.route("hello there", quality_threshold=0.99)
    assert d.model == "big" and not d.met_threshold and "no model" in d.reason
    # Relative: >= 0.85 of the best (0.95) -> 0.8075 -> mid.
    d = router.route("hello there", relative_threshold=0.85)
    assert d.model == "mid"
    assert d.threshold == pytest.approx(0.85 * 0.95)


def test_fit_learns_per_prompt_quality(catalog):
    router = thrifty.Router(catalog, predictor="knn").fit(labeled())
    assert router.examples == 80
    a = router.route("translate the word number 7 into french please", quality_threshold=0.9)
    b = router.route("prove that the sequence 7 converges using epsilon delta", 0.9)
    assert a.model == "cheap", a.reason
    assert b.model == "big", b.reason
    assert a.predicted_quality["cheap"] > 0.9 > b.predicted_quality["cheap"]
    # Output tokens are learned too.
    assert a.output_tokens["cheap"] == pytest.approx(50, rel=0.2)


@pytest.mark.parametrize("predictor", ["logistic", thrifty.LogisticPredictor(l2=0.1)])
def test_logistic_predictor_learns(catalog, predictor):
    router = thrifty.Router(catalog, predictor=predictor).fit(labeled())
    assert router.predictor == "logistic"
    q, _ = router.predict(
        [
            "translate the word number 3 into french please",
            "prove that the sequence 3 converges using epsilon delta",
        ]
    )
    assert q[0, 0] > 0.7 and q[1, 0] < 0.3


def test_feedback_moves_predictions(catalog):
    router = thrifty.Router(catalog)
    prompt = "summarize this contract clause about liability"
    before = router.route(prompt).predicted_quality["cheap"]
    for _ in range(5):
        router.feedback(prompt, "cheap", 0.0)
    after = router.route(prompt).predicted_quality["cheap"]
    assert after < before - 0.2
    for _ in range(20):
        router.feedback(prompt, "cheap", 1.0)
    assert router.route(prompt).predicted_quality["cheap"] > after


def test_save_load_round_trip(catalog, tmp_path):
    router = thrifty.Router(catalog).fit(labeled())
    path = tmp_path / "router.bin"
    router.save(path)
    loaded = thrifty.Router.load(path, catalog)
    prompts = TOPIC_A[:5] + TOPIC_B[:5] + ["something else entirely"]
    for p in prompts:
        a, b = router.route(p), loaded.route(p)
        assert a.model == b.model
        assert a.predicted_quality == b.predicted_quality
    np.testing.assert_array_equal(router.predict(prompts)[0], loaded.predict(prompts)[0])


def test_load_errors(catalog, tmp_path):
    router = thrifty.Router(catalog).fit(labeled())
    path = tmp_path / "router.bin"
    router.save(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(thrifty.DataLossError, match="checksum"):
        thrifty.Router.load(bad, catalog)
    (tmp_path / "junk.bin").write_bytes(b"not a router")
    with pytest.raises(thrifty.DataLossError, match="not a thrifty router file"):
        thrifty.Router.load(tmp_path / "junk.bin", catalog)
    other = thrifty.Catalog([spec("cheap", 0.1, 0.4), spec("other", 1, 1)])
    with pytest.raises(thrifty.InvalidArgumentError, match="catalog"):
        thrifty.Router.load(path, other)
    with pytest.raises(thrifty.InvalidArgumentError, match="embedder"):
        thrifty.Router.load(path, catalog, embedder=thrifty.HashingEmbedder(dim=128))


def test_bad_input(catalog):
    router = thrifty.Router(catalog)
    with pytest.raises(
        thrifty.InvalidArgumentError, match=r"examples\[1\]\['gpt-9'\].*unknown model"
    ):
        router.fit([("a", {"cheap": 1.0}), ("b", {"gpt-9": 1.0})])
    with pytest.raises(thrifty.InvalidArgumentError, match=r"examples\[0\]: no labels"):
        router.fit([("a", {})])
    with pytest.raises(thrifty.InvalidArgumentError, match=r"examples\[0\]\['cheap'\].*\[0, 1\]"):
        router.fit([("a", {"cheap": 1.5})])
    with pytest.raises(
        thrifty.InvalidArgumentError, match=r"quality_threshold must be in \[0, 1\]"
    ):
        router.route("a", quality_threshold=1.2)
    with pytest.raises(thrifty.InvalidArgumentError, match=r"relative_threshold must be in"):
        router.route("a", relative_threshold=-0.1)
    with pytest.raises(thrifty.InvalidArgumentError, match="not both"):
        router.route("a", 0.5, relative_threshold=0.5)
    with pytest.raises(thrifty.InvalidArgumentError, match="quality_threshold"):
        thrifty.Router(catalog, quality_threshold=2)
    with pytest.raises(thrifty.InvalidArgumentError, match="catalog is empty"):
        thrifty.Router(thrifty.Catalog([]))
    with pytest.raises(TypeError, match="prompt"):
        router.route(42)
    with pytest.raises(thrifty.InvalidArgumentError, match="predictor must be"):
        thrifty.Router(catalog, predictor="magic")
    with pytest.raises(thrifty.InvalidArgumentError, match="feedback.*unknown model"):
        router.feedback("a", "nope", 1.0)
