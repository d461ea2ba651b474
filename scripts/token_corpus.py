"""Text samples for calibrating and measuring estimate_tokens (shared by the calibration script
and benchmarks/bench_token_estimate.py).

Sources, read in place: ../shared/data (Quora questions, MMLU and RouterBench prompts) when
present, and the Python standard library's own source files (code). Samples are split into
calibration and held-out halves by a hash of the text, so the benchmark never measures on
what the calibration saw.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import json
import os
import random
import re
import sysconfig
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("THRIFTY_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _held_out(text: str) -> bool:
    return hashlib.blake2b(text.encode(), digest_size=2).digest()[0] % 2 == 1


def _questions(limit: int) -> List[str]:
    path = SHARED_DATA / "cache" / "qqp_pairs.jsonl.gz"
    if not path.exists():
        return []
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text_a"])
            if len(out) >= limit:
                break
    return out


def _prompts(limit: int) -> List[str]:
    out: List[str] = []
    csv.field_size_limit(10**8)
    files = sorted(glob.glob(str(SHARED_DATA / "routing" / "routellm_mmlu" / "mmlu_*.csv")))
    files += sorted(glob.glob(str(SHARED_DATA / "routing" / "routerbench" / "*_train.csv")))
    rng = random.Random(7)
    for path in files:
        with open(path, encoding="utf-8") as f:
            rows = [row["prompt"] for row in csv.DictReader(f) if row.get("prompt")]
        out.extend(rng.sample(rows, min(len(rows), max(1, limit // len(files)))))
    return out[:limit]


def _code(limit: int) -> List[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))
    rng = random.Random(11)
    rng.shuffle(files)
    out = []
    for path in files[:limit]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        # Windows of ~4 KB, the size of a typical code-bearing prompt.
        for start in range(0, min(len(text), 16000), 4000):
            out.append(text[start : start + 4000])
    return out[: limit * 2]


def _multilingual(limit: int) -> List[str]:
    """Translated UI strings from the machine's gettext catalogs, and CPython's CJK samples."""
    import gettext

    texts: List[str] = []
    catalogs = sorted(glob.glob("/usr/share/locale/*/LC_MESSAGES/*.mo"))
    catalogs += sorted(glob.glob("/usr/share/vim/vim*/lang/*/LC_MESSAGES/*.mo"))
    for path in catalogs:
        if not re.search(r"/(de|fr|es|ru|ja|zh_CN|zh_TW|ko|uk|pl|pt_BR)/", path):
            continue
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        chunk = ""
        for translated in getattr(catalog, "_catalog", {}).values():
            if not isinstance(translated, str) or not translated.strip():
                continue
            chunk += translated + "\n"
            if len(chunk) > 600:
                texts.append(chunk)
                chunk = ""
    cjk = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"
    for path in sorted(cjk.glob("*-utf8.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.extend(text[i : i + 600] for i in range(0, len(text), 600))
    rng = random.Random(17)
    rng.shuffle(texts)
    return texts[:limit]


def _json_docs(limit: int) -> List[str]:
    rng = random.Random(13)
    out = []
    for i in range(limit):
        tool = {
            "type": "function",
            "function": {
                "name": f"lookup_{rng.choice(['order', 'user', 'invoice', 'shipment'])}_{i}",
                "description": "Fetch a record by id and return its fields as JSON.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "Record identifier"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": rng.randint(5, 500)},
                        "fields": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["id"],
                },
            },
        }
        out.append(json.dumps(tool, indent=rng.choice([None, 2])))
    return out


def samples(held_out: Optional[bool], per_kind: int = 1500) -> Dict[str, List[str]]:
    """Samples by kind; held_out=True/False picks one half, None keeps all."""
    kinds = {
        "questions": _questions(per_kind * 2),
        "prompts": _prompts(per_kind * 2),
        "code": _code(per_kind),
        "json": _json_docs(per_kind // 5),
        "multilingual": _multilingual(per_kind),
    }
    if held_out is None:
        return {k: v for k, v in kinds.items() if v}
    return {k: [t for t in v if _held_out(t) == held_out] for k, v in kinds.items() if v}
