import json
import re
import subprocess

import thrifty
from thrifty import _samples


def run(cmd, *args, check=True):
    return subprocess.run([*cmd, *args], capture_output=True, text=True, check=check)


def money(cell: str) -> float:
    return float(cell.replace("$", "").replace(",", ""))


def test_demo_prints_the_catalog_cheapest_first(thrifty_cli):
    out = run(thrifty_cli, "demo").stdout
    rows = [
        line.split() for line in out.splitlines() if re.match(r"^\S+\s+\w+\s+[\d,]+\s+\$", line)
    ]
    catalog = thrifty.Catalog.default()
    active = [m for m in catalog.models() if not m.deprecated]
    assert len(rows) == len(active) >= 12
    per_call = [money(r[3]) for r in rows]
    assert per_call == sorted(per_call)
    # Each row's price is the catalog's price of the estimated tokens.
    name, _, prompt, cost = rows[0][0], rows[0][1], int(rows[0][2].replace(",", "")), per_call[0]
    expected = catalog.cost(name, thrifty.Usage(input_tokens=prompt, output_tokens=300))
    assert abs(expected - cost) <= 1e-6 + 0.01 * expected
    assert thrifty.request_key(_samples.support_request()) in out


def test_models_and_key_and_cost(thrifty_cli, write):
    models = run(thrifty_cli, "models").stdout
    assert "gpt-6-luna" in models and "gpt-4-1106-preview" not in models
    assert "gpt-4-1106-preview" in run(thrifty_cli, "models", "--all").stdout
    request = _samples.support_request()
    path = write("req.json", json.dumps(request))
    assert run(thrifty_cli, "key", str(path)).stdout.strip() == thrifty.request_key(request)
    assert run(
        thrifty_cli, "key", str(path), "--namespace", "t"
    ).stdout.strip() == thrifty.request_key(request, namespace="t")
    rows = json.loads(
        run(thrifty_cli, "cost", str(path), "--json", "--cached-tokens", "4000").stdout
    )
    assert rows[0]["cost_cached_prefix_usd"] < rows[0]["cost_usd"]


def test_cli_errors_are_one_line_with_exit_code_2(thrifty_cli, write):
    bad = write("bad.json", '{"model": }')
    result = run(thrifty_cli, "key", str(bad), check=False)
    assert result.returncode == 2
    assert re.search(r"bad.json:1:\d+: malformed JSON", result.stderr)
    policy = write(
        "p.yaml",
        "models:\n  - name: x\n    provider: openai\n    input_per_mtok: -1\n"
        "    output_per_mtok: 1\n",
    )
    result = run(thrifty_cli, "models", "--policy", str(policy), check=False)
    assert result.returncode == 2 and "p.yaml:4:" in result.stderr
