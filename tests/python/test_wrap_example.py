"""docs/examples/wrap_quickstart.py end to end, with both real SDKs against the local server."""

import importlib.util
import sys
from pathlib import Path

from fake_llm_server import FakeLLMServer

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "wrap_quickstart.py"


def _load():
    spec = importlib.util.spec_from_file_location("wrap_quickstart", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_quickstart_example_hits_the_caches():
    example = _load()
    with FakeLLMServer() as server:
        client = example.build_client(server.base_url, server.anthropic_url, "test")
        result = example.run(client)
    assert [c["cache"] for c in result["calls"]] == ["miss", "exact", "semantic", "miss"]
    assert result["calls"][1]["answer"] == result["calls"][0]["answer"]
    assert result["calls"][1]["saved_usd"] == result["calls"][0]["cost_usd"] > 0
    assert result["streamed"] == result["calls"][0]["answer"]
    assert server.count() == 2  # two misses; the three hits and the stream never reached it
    stats = result["stats"]
    assert stats["hits"] == {"exact": 2, "semantic": 1}
    assert stats["savings_usd"]["exact"] > 0 and stats["savings_usd"]["semantic"] > 0
