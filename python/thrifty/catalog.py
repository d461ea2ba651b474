"""The model catalog: prices, limits and quality priors, from a policy file or LiteLLM's map."""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

from thrifty import _core, _policy_file
from thrifty._core import InvalidArgumentError, ModelSpec, ProviderCacheRules

PathLike = Union[str, "os.PathLike[str]"]


def default_policy_path() -> Path:
    """The policy shipped with the package (router_policies/default.yaml in the source tree)."""
    installed = resources.files("thrifty") / "policies" / "default.yaml"
    if installed.is_file():
        return Path(str(installed))
    source_tree = Path(__file__).resolve().parents[2] / "router_policies" / "default.yaml"
    if source_tree.is_file():
        return source_tree
    raise _core.FailedPreconditionError(
        f"the default policy is missing: looked for {installed} and {source_tree}; "
        "reinstall thrifty (pip install --force-reinstall thrifty)"
    )


class Catalog(_core.Catalog):
    """The models a router may choose from.

    Build it from ModelSpecs (``Catalog([ModelSpec(...), ...])``), from a policy file
    (``Catalog.from_yaml(path)``), from LiteLLM's price map (``Catalog.from_litellm(path)``), or
    take the shipped one (``Catalog.default()``). Lookups accept names and aliases,
    case-insensitively, with or without a ``provider/`` prefix.

    Immutable and thread-safe. ``policy`` holds the file's other sections (routing, providers,
    ...), ``source`` the file it came from. ``providers`` are the prompt-cache rules per
    provider (``ProviderCacheRules``); None takes the ones shipped in the default policy.
    """

    def __init__(
        self,
        models: Iterable[ModelSpec],
        *,
        policy: Optional[Dict[str, Any]] = None,
        source: Optional[str] = None,
        providers: Optional[Iterable[ProviderCacheRules]] = None,
    ):
        models = list(models)
        for i, model in enumerate(models):
            if not isinstance(model, ModelSpec):
                raise TypeError(
                    f"Catalog: models[{i}] must be a thrifty.ModelSpec, got {type(model).__name__}"
                )
        if providers is None:
            providers = _default_provider_rules()
        providers = list(providers)
        for i, rules in enumerate(providers):
            if not isinstance(rules, ProviderCacheRules):
                raise TypeError(
                    f"Catalog: providers[{i}] must be a thrifty.ProviderCacheRules, "
                    f"got {type(rules).__name__}"
                )
        super().__init__(models, providers)
        self.policy: Dict[str, Any] = dict(policy or {})
        self.source = source

    @classmethod
    def default(cls) -> Catalog:
        """The catalog shipped with thrifty (prices read on the date in ``policy['read_on']``)."""
        return _default_catalog()

    @classmethod
    def from_yaml(cls, path: PathLike) -> Catalog:
        """Loads a policy file; errors name the file, line and field."""
        path = Path(path)
        kwargs_list, sections, doc = _policy_file.read_policy(path)
        providers = _read_provider_rules(doc)
        specs = []
        for i, kwargs in enumerate(kwargs_list):
            try:
                specs.append(ModelSpec(**kwargs))
            except InvalidArgumentError as e:
                raise InvalidArgumentError(_policy_file.locate_core_error(doc, i, str(e))) from None
        try:
            return cls(specs, policy=sections, source=str(path), providers=providers)
        except InvalidArgumentError as e:
            message = str(e)
            if message.startswith("providers."):
                raise InvalidArgumentError(
                    _policy_file.locate_provider_error(doc, message)
                ) from None
            index = _model_index(message)
            where = doc.where(("models", index)) if index is not None else f"{path}:1"
            raise InvalidArgumentError(f"{where}: {message}") from None

    @classmethod
    def from_litellm(cls, path: PathLike) -> Catalog:
        """Loads LiteLLM's model_prices_and_context_window.json schema.

        Chat/completion models with per-token prices are kept; embedding, image and audio
        entries and entries without token prices are skipped (counts in
        ``policy['skipped']``); unknown fields are ignored.
        """
        path = Path(path)
        kwargs_list, skipped = _policy_file.read_litellm(path)
        specs = [ModelSpec(**kwargs) for kwargs in kwargs_list]
        return cls(specs, policy={"skipped": skipped}, source=str(path))

    def cheapest_first(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        include_deprecated: bool = False,
    ):
        """(cost_usd, ModelSpec) for a call of this size on every model, cheapest first."""
        usage = _core.Usage(
            input_tokens=input_tokens - cached_input_tokens,
            cached_input_tokens=cached_input_tokens,
            output_tokens=output_tokens,
        )
        rows = [
            (self.cost(spec, usage), spec)
            for spec in self.models()
            if include_deprecated or not spec.deprecated
        ]
        return sorted(rows, key=lambda row: (row[0], row[1].name))


def _model_index(message: str) -> Optional[int]:
    import re

    match = re.match(r"models\[(\d+)\]", message)
    return int(match.group(1)) if match else None


def _read_provider_rules(doc: _policy_file.LocatedYaml) -> Optional[list]:
    """The policy's prompt-cache rules; None when it has no providers section."""
    if not isinstance(doc.data, dict) or "providers" not in doc.data:
        return None
    rules = []
    for name, entry in _policy_file.read_providers(doc):
        try:
            rules.append(ProviderCacheRules.from_dict(name, entry))
        except InvalidArgumentError as e:
            raise InvalidArgumentError(_policy_file.locate_provider_error(doc, str(e))) from None
    return rules


@functools.lru_cache(maxsize=1)
def _default_provider_rules() -> tuple:
    doc = _policy_file.LocatedYaml(default_policy_path())
    return tuple(_read_provider_rules(doc) or ())


@functools.lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return Catalog.from_yaml(default_policy_path())
