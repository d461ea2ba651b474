"""Reading policy files (YAML) and LiteLLM price maps (JSON) with line-accurate errors.

Every error is an InvalidArgumentError whose message starts with ``path:line:`` and names the
field, the value found and what is accepted.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

from thrifty._core import InvalidArgumentError

PathKey = Tuple[Any, ...]

TOP_LEVEL_FIELDS = ("version", "read_on", "models", "providers", "routing", "cache", "agent")
PRICE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "cache_write_5m_per_mtok",
    "cache_write_1h_per_mtok",
)
MODEL_FIELDS = (
    "name",
    "provider",
    *PRICE_FIELDS,
    "context_window",
    "max_output_tokens",
    "quality",
    "aliases",
    "deprecated",
    "source",
    "read_on",
)
REQUIRED_MODEL_FIELDS = ("name", "provider", "input_per_mtok", "output_per_mtok")


class LocatedYaml:
    """A parsed YAML document plus the line of every mapping value and sequence item."""

    def __init__(self, path: Path):
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise InvalidArgumentError(f"{path}: cannot read policy file: {e.strerror}") from e
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise InvalidArgumentError(
                f"{where}: malformed YAML: {e.problem or e.context}"
            ) from None
        self.lines: Dict[PathKey, int] = {}
        self.key_lines: Dict[PathKey, int] = {}
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, key: PathKey) -> None:
        self.lines[key] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                self.key_lines[(*key, k.value)] = k.start_mark.line + 1
                self._index(v, (*key, k.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._index(v, (*key, i))

    def where_key(self, key: PathKey) -> str:
        """The line of a mapping key itself (for unknown-field errors)."""
        if key in self.key_lines:
            return f"{self.path}:{self.key_lines[key]}"
        return self.where(key)

    def where(self, key: PathKey) -> str:
        while key and key not in self.lines:
            key = key[:-1]
        return f"{self.path}:{self.lines.get(key, 1)}"


def _field_name(key: PathKey) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _suggest(name: str, accepted: Tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, accepted, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_number(doc: LocatedYaml, key: PathKey, value: Any, *, integer: bool) -> None:
    what = "a positive integer" if integer else "a number >= 0 (USD per million tokens)"
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad and integer:
        bad = not isinstance(value, int) or value <= 0
    if not bad and not integer:
        bad = not math.isfinite(value) or value < 0
    if bad:
        raise InvalidArgumentError(
            f"{doc.where(key)}: {_field_name(key)}: expected {what}, got {value!r}"
        )


def _model_kwargs(doc: LocatedYaml, index: int, entry: Any) -> Dict[str, Any]:
    base: PathKey = ("models", index)
    if not isinstance(entry, dict):
        raise InvalidArgumentError(
            f"{doc.where(base)}: models[{index}]: expected a mapping with "
            f"{', '.join(REQUIRED_MODEL_FIELDS)}, got {type(entry).__name__}"
        )
    for field in entry:
        if field not in MODEL_FIELDS:
            raise InvalidArgumentError(
                f"{doc.where_key((*base, field))}: models[{index}]: unknown field "
                f"'{field}'{_suggest(str(field), MODEL_FIELDS)}; accepted: {', '.join(MODEL_FIELDS)}"
            )
    for field in REQUIRED_MODEL_FIELDS:
        if entry.get(field) is None:
            raise InvalidArgumentError(
                f"{doc.where(base)}: models[{index}]: missing required field '{field}'"
            )
    for field in ("name", "provider", "source"):
        if field in entry and not isinstance(entry[field], str):
            raise InvalidArgumentError(
                f"{doc.where((*base, field))}: models[{index}].{field}: expected a string, "
                f"got {entry[field]!r}"
            )
    for field in PRICE_FIELDS:
        if entry.get(field) is not None:
            _check_number(doc, (*base, field), entry[field], integer=False)
    for field in ("context_window", "max_output_tokens"):
        if entry.get(field) is not None:
            _check_number(doc, (*base, field), entry[field], integer=True)
    quality = entry.get("quality")
    if quality is not None:
        if not isinstance(quality, dict):
            raise InvalidArgumentError(
                f"{doc.where((*base, 'quality'))}: models[{index}].quality: expected a mapping "
                f"of category to a number in [0, 1], got {quality!r}"
            )
        for category, prior in quality.items():
            key = (*base, "quality", category)
            if isinstance(prior, bool) or not isinstance(prior, (int, float)):
                raise InvalidArgumentError(
                    f"{doc.where(key)}: {_field_name(key)}: expected a number in [0, 1], "
                    f"got {prior!r}"
                )
    aliases = entry.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InvalidArgumentError(
            f"{doc.where((*base, 'aliases'))}: models[{index}].aliases: expected a list of "
            f"strings, got {aliases!r}"
        )
    kwargs = {k: v for k, v in entry.items() if k in MODEL_FIELDS and k != "read_on"}
    kwargs["aliases"] = aliases
    kwargs["quality"] = {str(k): float(v) for k, v in (quality or {}).items()}
    for field in PRICE_FIELDS:
        if kwargs.get(field) is not None:
            kwargs[field] = float(kwargs[field])
    kwargs["deprecated"] = bool(entry.get("deprecated", False))
    return kwargs


def read_policy(path: Path) -> Tuple[List[Dict[str, Any]], Dict[str, Any], LocatedYaml]:
    """Returns (model kwargs, the other top-level sections, the located document)."""
    doc = LocatedYaml(path)
    data = doc.data
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"{path}:1: a policy file must be a mapping with a 'models' list, "
            f"got {type(data).__name__}"
        )
    for field in data:
        if field not in TOP_LEVEL_FIELDS:
            raise InvalidArgumentError(
                f"{doc.where_key((field,))}: unknown top-level field '{field}'"
                f"{_suggest(str(field), TOP_LEVEL_FIELDS)}; accepted: {', '.join(TOP_LEVEL_FIELDS)}"
            )
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise InvalidArgumentError(
            f"{doc.where(('models',))}: 'models' must be a non-empty list of model entries"
        )
    kwargs = [_model_kwargs(doc, i, entry) for i, entry in enumerate(models)]
    sections = {k: v for k, v in data.items() if k != "models"}
    return kwargs, sections, doc


PROVIDER_FIELDS = (
    "mode",
    "aliases",
    "min_tokens",
    "block_tokens",
    "max_breakpoints",
    "lookback_blocks",
    "ttls",
    "read_multiplier",
    "cache_key_field",
    "cache_key_rpm",
    "usage_fields",
    "source",
    "read_on",
)
CACHE_MODES = ("explicit", "automatic", "implicit", "none")


def read_providers(doc: LocatedYaml) -> List[Tuple[str, Dict[str, Any]]]:
    """The ``providers:`` section as (name, entry) pairs, checked field by field with lines.

    Values are checked again (and completely) by ProviderCacheRules.from_dict; see
    :func:`locate_provider_error` for the lines of its errors.
    """
    data = doc.data if isinstance(doc.data, dict) else {}
    section = data.get("providers")
    if section is None:
        return []
    if not isinstance(section, dict):
        raise InvalidArgumentError(
            f"{doc.where(('providers',))}: 'providers' must be a mapping of provider name to "
            f"prompt-cache rules, got {type(section).__name__}"
        )
    out = []
    for name, entry in section.items():
        base: PathKey = ("providers", name)
        if not isinstance(entry, dict):
            raise InvalidArgumentError(
                f"{doc.where(base)}: providers.{name}: expected a mapping of prompt-cache rules "
                f"(mode, min_tokens, ...), got {type(entry).__name__}"
            )
        for field in entry:
            if field not in PROVIDER_FIELDS:
                raise InvalidArgumentError(
                    f"{doc.where_key((*base, field))}: providers.{name}: unknown field "
                    f"'{field}'{_suggest(str(field), PROVIDER_FIELDS)}; accepted: "
                    f"{', '.join(PROVIDER_FIELDS)}"
                )
        mode = entry.get("mode")
        if mode not in CACHE_MODES:
            raise InvalidArgumentError(
                f"{doc.where((*base, 'mode'))}: providers.{name}.mode: expected one of "
                f"{', '.join(CACHE_MODES)}, got {mode!r}"
            )
        for field in ("source", "read_on"):
            if field not in entry:
                raise InvalidArgumentError(
                    f"{doc.where(base)}: providers.{name}: missing '{field}' (where and when "
                    "the rules were read)"
                )
        out.append((str(name), entry))
    return out


def locate_provider_error(doc: LocatedYaml, message: str) -> str:
    """Prefixes a ProviderCacheRules error ("providers.<name>.<field>[i]...") with its line."""
    match = re.match(r"providers\.([^.:\s\[]+)(?:\.([a-z_]+))?(?:\[(\d+)\])?", message)
    if not match:
        return f"{doc.where(('providers',))}: {message}"
    key: PathKey = ("providers", match.group(1))
    if match.group(2):
        key = (*key, match.group(2))
    if match.group(3):
        key = (*key, int(match.group(3)))
    return f"{doc.where(key)}: {message}"


def locate_core_error(doc: LocatedYaml, index: int, message: str) -> str:
    """Prefixes a core validation message with the line of the field it names."""
    for field in MODEL_FIELDS:
        if re.search(rf"\b{field}\b", message):
            return f"{doc.where(('models', index, field))}: models[{index}]: {message}"
    return f"{doc.where(('models', index))}: models[{index}]: {message}"


# --- LiteLLM's model_prices_and_context_window.json --------------------------------------

LITELLM_MODES = {None, "chat", "completion", "responses"}


def _per_mtok(value: float) -> float:
    # Per-token prices are stored as binary floats (2.5e-06); print at 12 significant digits
    # to recover the published per-million price exactly.
    return float(f"{value * 1e6:.12g}")


def _litellm_lines(text: str) -> Dict[str, int]:
    lines: Dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r'^\s{0,8}"((?:[^"\\]|\\.)+)"\s*:\s*\{', line)
        if match and match.group(1) not in lines:
            lines[match.group(1)] = number
    return lines


def read_litellm(path: Path) -> Tuple[List[Dict[str, Any]], Dict[str, int]]:
    """Model kwargs from a LiteLLM price map, and counts of what was skipped and why."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidArgumentError(f"{path}: cannot read LiteLLM price map: {e.strerror}") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArgumentError(
            f"{path}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"{path}:1: a LiteLLM price map is an object of model name -> prices, "
            f"got {type(data).__name__}"
        )
    lines = _litellm_lines(text)
    skipped = {"not_a_chat_model": 0, "no_token_prices": 0, "duplicate_name": 0}
    seen: set = set()
    out: List[Dict[str, Any]] = []
    for name, entry in data.items():
        if name == "sample_spec":
            continue
        where = f"{path}:{lines.get(name, 1)}"
        if not isinstance(entry, dict):
            raise InvalidArgumentError(
                f"{where}: '{name}': expected an object of prices, got {type(entry).__name__}"
            )
        if entry.get("mode") not in LITELLM_MODES:
            skipped["not_a_chat_model"] += 1
            continue
        if entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
            skipped["no_token_prices"] += 1
            continue
        prices = {}
        for source, target in (
            ("input_cost_per_token", "input_per_mtok"),
            ("output_cost_per_token", "output_per_mtok"),
            ("cache_read_input_token_cost", "cached_input_per_mtok"),
            ("cache_creation_input_token_cost", "cache_write_5m_per_mtok"),
            ("cache_creation_input_token_cost_above_1hr", "cache_write_1h_per_mtok"),
        ):
            value = entry.get(source)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidArgumentError(
                    f"{where}: '{name}'.{source}: expected a number >= 0 (USD per token), "
                    f"got {value!r}"
                )
            prices[target] = _per_mtok(float(value))
        if name.lower() in seen:
            skipped["duplicate_name"] += 1
            continue
        seen.add(name.lower())
        context = entry.get("max_input_tokens")
        max_output = entry.get("max_output_tokens")
        context = context if isinstance(context, int) and context > 0 else None
        max_output = max_output if isinstance(max_output, int) and max_output > 0 else None
        if context and max_output and max_output > context:
            max_output = None  # LiteLLM sometimes records total tokens here
        out.append(
            dict(
                name=name,
                provider=str(entry.get("litellm_provider") or "unknown"),
                context_window=context,
                max_output_tokens=max_output,
                source=f"litellm:{path.name}",
                **prices,
            )
        )
    return out, skipped
