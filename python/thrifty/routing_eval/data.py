"""Loaders for the routing evaluation data (../shared/data/routing, see its README.md).

Each loader returns a :class:`RoutingTable`: one row per prompt, one column per model, with the
quality in [0, 1] and the realized cost in USD of sending that prompt to that model, and how the
rows split into fitting and evaluation rows.

- RouteLLM MMLU (``routellm_mmlu/mmlu_<subject>.csv``): correctness of Mixtral-8x7B-Instruct and
  gpt-4-1106-preview. Prompts RouteLLM found contaminated are dropped, as RouteLLM does. Rows split
  50/50 into train/test by a seeded hash of the prompt (so a prompt repeated across subjects stays
  on one side). Cost: the catalog price of the prompt's estimated tokens plus one output token
  (the answer letter).
- RouteLLM MT-Bench (``routellm_mt_bench``): one row per question (both turns go to the routed
  model, as in RouteLLM), routed on the first turn's text; quality = mean GPT-4 judge score of
  the two turns / 10, so "95% of GPT-4's quality" means 95% of its MT-Bench score as in RouteLLM.
  Questions with a contaminated turn are dropped. Cost: turn 1 sends the question, turn 2 the
  question, the model's first answer and the follow-up; outputs are the model's answers as the
  judge saw them; priced with the catalog. Evaluated by leave-one-question-out.
- RouterBench (``routerbench/{arc_challenge,winograde}_{train,test}.csv``): their train/test
  split, 11 models, quality columns in [0, 1] and the real per-prompt cost ``<model>|total_cost``.
  Rows with an empty quality or cost cell are skipped. The catalog's prices are fitted per model
  from the train rows: blended USD per token = sum of cost / sum of (prompt + answer) estimated
  tokens. Answers are one to three tokens, so input and output prices cannot be told apart from
  this data and both are set to the blended price.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import thrifty
from thrifty.catalog import Catalog

DATASETS = ("mmlu", "mt_bench", "arc_challenge", "winogrande")
ROUTELLM_STRONG = "gpt-4-1106-preview"
ROUTELLM_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MMLU_OUTPUT_TOKENS = 1
# RouterBench spells winogrande without the n in its file names.
_ROUTERBENCH_FILES = {
    "arc_challenge": ("arc_challenge",),
    "winogrande": ("winograde", "winogrande"),
}


@dataclass
class RoutingTable:
    """Per-prompt labels of several models on one dataset.

    ``models`` are the catalog's names, in column order; ``columns`` the dataset's own names.
    ``split`` is "train"/"test" per row (RouterBench, MMLU) or None; ``groups`` a group id per
    row for leave-one-group-out evaluation (MT-Bench question ids) or None.
    """

    name: str
    prompts: List[str]
    columns: List[str]
    models: List[str]
    quality: np.ndarray
    cost: np.ndarray
    catalog: Catalog
    output_tokens: Optional[np.ndarray] = None
    split: Optional[np.ndarray] = None
    groups: Optional[np.ndarray] = None
    info: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        for label, arr in (("quality", self.quality), ("cost", self.cost)):
            if arr.shape != (n, m):
                raise ValueError(f"{self.name}: {label} has shape {arr.shape}, expected {(n, m)}")
        if np.any((self.quality < 0) | (self.quality > 1)) or not np.all(np.isfinite(self.quality)):
            raise ValueError(f"{self.name}: quality must lie in [0, 1]")
        if np.any(self.cost < 0) or not np.all(np.isfinite(self.cost)):
            raise ValueError(f"{self.name}: cost must be finite and >= 0")

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: np.ndarray) -> RoutingTable:
        def take(a):
            return None if a is None else a[idx]

        return RoutingTable(
            name=self.name,
            prompts=[self.prompts[i] for i in idx],
            columns=self.columns,
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
            catalog=self.catalog,
            output_tokens=take(self.output_tokens),
            split=take(self.split),
            groups=take(self.groups),
            info=self.info,
        )


def eval_catalog_path() -> Path:
    """router_policies/eval_models.yaml (installed as thrifty/policies/eval_models.yaml)."""
    from importlib import resources

    installed = resources.files("thrifty") / "policies" / "eval_models.yaml"
    if installed.is_file():
        return Path(str(installed))
    return Path(__file__).resolve().parents[3] / "router_policies" / "eval_models.yaml"


def routellm_catalog() -> Catalog:
    return Catalog.from_yaml(eval_catalog_path())


def hash_split(prompts: Sequence[str], seed: int, test_share: float = 0.5) -> np.ndarray:
    """ "train"/"test" per prompt from a seeded SHA-256 of the prompt (equal prompts, same side)."""
    out = np.empty(len(prompts), dtype=object)
    for i, p in enumerate(prompts):
        h = hashlib.sha256(f"{seed}\0{p}".encode()).digest()
        out[i] = "test" if int.from_bytes(h[:8], "big") / 2**64 < test_share else "train"
    return out


def _contaminated(path: Path) -> set:
    if not path.is_file():
        return set()
    out = set()
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.add(json.loads(line)["eval_prompt"])
                except (json.JSONDecodeError, KeyError) as e:
                    raise ValueError(
                        f"{path}:{lineno}: expected a JSON object with eval_prompt"
                    ) from e
    return out


def _bool(value: Any, where: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return 1.0
    if text in ("false", "0", "0.0"):
        return 0.0
    raise ValueError(f"{where}: expected True or False, got {value!r}")


def _price_table(
    catalog: Catalog, models: Sequence[str], input_tokens: Sequence[Sequence[int]], out
) -> np.ndarray:
    n, m = len(input_tokens), len(models)
    cost = np.zeros((n, m))
    for i in range(n):
        for j, name in enumerate(models):
            usage = thrifty.Usage(
                input_tokens=int(input_tokens[i][j]), output_tokens=int(out[i][j])
            )
            cost[i, j] = catalog.cost(name, usage)
    return cost


def load_mmlu(root: Path, *, seed: int = 0, catalog: Optional[Catalog] = None) -> RoutingTable:
    import pandas as pd

    folder = Path(root) / "routellm_mmlu"
    files = sorted(folder.glob("mmlu_*.csv"))
    if not files:
        raise FileNotFoundError(f"{folder}: no mmlu_<subject>.csv files")
    catalog = catalog or routellm_catalog()
    columns = [ROUTELLM_WEAK, ROUTELLM_STRONG]
    models = [catalog.get(c).name for c in columns]
    bad = _contaminated(folder / "contaminated_prompts.jsonl")
    prompts: List[str] = []
    quality: List[List[float]] = []
    dropped = 0
    for path in files:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in ["prompt", *columns] if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; found {list(df.columns)}")
        for k, (p, *cells) in enumerate(zip(df["prompt"], *(df[c] for c in columns))):
            if p in bad:
                dropped += 1
                continue
            prompts.append(p)
            quality.append([_bool(v, f"{path}:{k + 2}: {c}") for v, c in zip(cells, columns)])
    tokens = [[thrifty.estimate_tokens(p, model=m) for m in models] for p in prompts]
    out = [[MMLU_OUTPUT_TOKENS] * len(models)] * len(prompts)
    return RoutingTable(
        name="mmlu",
        prompts=prompts,
        columns=columns,
        models=models,
        quality=np.asarray(quality, dtype=np.float64).reshape(len(prompts), len(models)),
        cost=_price_table(catalog, models, tokens, out),
        catalog=catalog,
        output_tokens=np.full((len(prompts), len(models)), float(MMLU_OUTPUT_TOKENS)),
        split=hash_split(prompts, seed),
        info={"files": len(files), "contaminated_dropped": dropped, "split": f"sha256 seed {seed}"},
    )


_TURN1_ANSWER = re.compile(
    r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End of Assistant's Answer\]", re.S
)
_TURN2_ANSWERS = re.compile(
    r"### Assistant A:\n(.*?)(?=\n\n### User:|\n\n<\|The End of Assistant A's Conversation)", re.S
)


def _answers(judgement: Dict[str, Any]) -> List[str]:
    """The model's answers the judge saw: [turn 1] or [turn 1, turn 2]."""
    text = judgement.get("user_prompt", "")
    if judgement.get("turn") == 1:
        m = _TURN1_ANSWER.search(text)
        return [m.group(1)] if m else []
    start = text.find("<|The Start of Assistant A's Conversation with User|>")
    return _TURN2_ANSWERS.findall(text[start:]) if start >= 0 else []


def load_mt_bench(root: Path, *, catalog: Optional[Catalog] = None) -> RoutingTable:
    folder = Path(root) / "routellm_mt_bench"
    catalog = catalog or routellm_catalog()
    columns = [ROUTELLM_WEAK, ROUTELLM_STRONG]
    models = [catalog.get(c).name for c in columns]
    bad = _contaminated(folder / "contaminated_prompts.jsonl")
    questions = {}
    with (folder / "question.jsonl").open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                q = json.loads(line)
                if not isinstance(q.get("turns"), list) or len(q["turns"]) != 2:
                    raise ValueError(f"{folder / 'question.jsonl'}:{lineno}: expected 2 turns")
                questions[q["question_id"]] = q
    scores: Dict[tuple, float] = {}
    answers: Dict[tuple, List[str]] = {}
    with (folder / "judgements.jsonl").open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            j = json.loads(line)
            key = (j["question_id"], j["model"], int(j["turn"]))
            score = float(j["score"])
            if not 1 <= score <= 10:
                raise ValueError(f"judgements.jsonl:{lineno}: score {score} outside 1..10")
            scores[key] = score
            got = _answers(j)
            if got:
                answers[(j["question_id"], j["model"])] = (
                    got if int(j["turn"]) == 2 else answers.get((j["question_id"], j["model"]), got)
                )
    prompts, quality, tokens, out, groups = [], [], [], [], []
    contaminated = incomplete = unparsed = 0
    for qid in sorted(questions):
        turns = questions[qid]["turns"]
        if turns[0] in bad or turns[1] in bad:
            contaminated += 1
            continue
        if any((qid, c, t) not in scores for c in columns for t in (1, 2)):
            incomplete += 1
            continue
        row_q, row_in, row_out = [], [], []
        for c, name in zip(columns, models):
            row_q.append((scores[(qid, c, 1)] + scores[(qid, c, 2)]) / 20.0)
            ans = answers.get((qid, c), [])
            if len(ans) != 2:
                unparsed += 1
                ans = (ans + ["", ""])[:2]

            def t(text: str, model: str = name) -> int:
                return thrifty.estimate_tokens(text, model=model)

            row_in.append(t(turns[0]) + t(turns[0]) + t(ans[0]) + t(turns[1]))
            row_out.append(t(ans[0]) + t(ans[1]))
        prompts.append(turns[0])
        quality.append(row_q)
        tokens.append(row_in)
        out.append(row_out)
        groups.append(qid)
    return RoutingTable(
        name="mt_bench",
        prompts=prompts,
        columns=columns,
        models=models,
        quality=np.asarray(quality, dtype=np.float64).reshape(len(prompts), len(models)),
        cost=_price_table(catalog, models, tokens, out),
        catalog=catalog,
        output_tokens=np.asarray(out, dtype=np.float64).reshape(len(prompts), len(models)),
        groups=np.asarray(groups),
        info={
            "contaminated_dropped": contaminated,
            "incomplete_dropped": incomplete,
            "answers_unparsed": unparsed,
        },
    )


def _cell_text(value: str) -> str:
    """RouterBench stores prompts and responses as Python list literals of strings."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parts = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return value
        if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
            return "\n\n".join(parts)
    return value


def last_block(prompt: str) -> str:
    """The last paragraph of a few-shot prompt: the question actually asked."""
    blocks = [b for b in prompt.split("\n\n") if b.strip()]
    return blocks[-1].strip() if blocks else prompt


def _float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        return math.nan
    return x


def load_routerbench(root: Path, name: str) -> RoutingTable:
    import pandas as pd

    if name not in _ROUTERBENCH_FILES:
        raise ValueError(
            f"unknown RouterBench dataset {name!r}; accepted: {list(_ROUTERBENCH_FILES)}"
        )
    folder = Path(root) / "routerbench"
    stem = next(
        (s for s in _ROUTERBENCH_FILES[name] if (folder / f"{s}_train.csv").is_file()), None
    )
    if stem is None:
        raise FileNotFoundError(f"{folder}: no {_ROUTERBENCH_FILES[name][0]}_train.csv")
    frames = {}
    for part in ("train", "test"):
        frames[part] = pd.read_csv(folder / f"{stem}_{part}.csv", dtype=str, keep_default_na=False)
    header = list(frames["train"].columns)
    columns = [c for c in header if "|" not in c and f"{c}|total_cost" in header]
    if len(columns) < 2:
        raise ValueError(
            f"{folder / stem}_train.csv: fewer than 2 models with a |total_cost column"
        )
    prompts, quality, cost, out_tok, split = [], [], [], [], []
    skipped = {"train": 0, "test": 0}
    for part, df in frames.items():
        for k in range(len(df)):
            row = df.iloc[k]
            q = [_float(row[c]) for c in columns]
            c_ = [_float(row[f"{c}|total_cost"]) for c in columns]
            if any(math.isnan(x) for x in q + c_):
                skipped[part] += 1
                continue
            if any(not 0 <= x <= 1 for x in q):
                raise ValueError(f"{folder / stem}_{part}.csv:{k + 2}: quality outside [0, 1]")
            prompts.append(_cell_text(row["prompt"]))
            quality.append(q)
            cost.append(c_)
            out_tok.append(
                [
                    thrifty.estimate_tokens(_cell_text(row.get(f"{c}|model_response", "")))
                    for c in columns
                ]
            )
            split.append(part)
    quality_a = np.asarray(quality, dtype=np.float64)
    cost_a = np.asarray(cost, dtype=np.float64)
    out_a = np.asarray(out_tok, dtype=np.float64)
    split_a = np.asarray(split, dtype=object)
    # Blended price per token per model, fitted on the train rows only.
    in_tok = np.asarray([thrifty.estimate_tokens(p) for p in prompts], dtype=np.float64)
    train = split_a == "train"
    specs, models = [], []
    for j, col in enumerate(columns):
        tokens = float(np.sum(in_tok[train] + out_a[train, j]))
        usd_per_mtok = float(np.sum(cost_a[train, j])) / tokens * 1e6 if tokens else 0.0
        provider, _, short = col.rpartition("/")
        specs.append(
            thrifty.ModelSpec(
                short,
                provider or "routerbench",
                round(usd_per_mtok, 6),
                round(usd_per_mtok, 6),
                source=f"fitted on RouterBench {stem}_train.csv: sum(total_cost)/sum(tokens)",
            )
        )
        models.append(short)
    catalog = Catalog(specs, source=f"routerbench:{stem}")
    return RoutingTable(
        name=name,
        prompts=prompts,
        columns=columns,
        models=models,
        quality=quality_a,
        cost=cost_a,
        catalog=catalog,
        output_tokens=out_a,
        split=split_a,
        info={
            "skipped_empty_rows": skipped,
            "files": f"{stem}_{{train,test}}.csv",
            "few_shot": True,
        },
    )


def load(root: Path, name: str, *, seed: int = 0) -> RoutingTable:
    if name == "mmlu":
        return load_mmlu(root, seed=seed)
    if name == "mt_bench":
        return load_mt_bench(root)
    if name in _ROUTERBENCH_FILES:
        return load_routerbench(root, name)
    raise ValueError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")


def available(root: Path, name: str) -> bool:
    root = Path(root)
    if name == "mmlu":
        return any((root / "routellm_mmlu").glob("mmlu_*.csv"))
    if name == "mt_bench":
        d = root / "routellm_mt_bench"
        return (d / "question.jsonl").is_file() and (d / "judgements.jsonl").is_file()
    if name in _ROUTERBENCH_FILES:
        return any(
            (root / "routerbench" / f"{s}_train.csv").is_file() for s in _ROUTERBENCH_FILES[name]
        )
    return False
