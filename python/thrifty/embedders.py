"""StaticEmbedder: WordLlama's static token vectors, pooled in thrifty's C++ core.

The weights and the tokenizer come from files the `wordllama` package ships inside its own
directory; they are read with `safetensors` and `tokenizers` (the `embeddings` extra:
``pip install 'thrifty[embeddings]'``). The `wordllama` module itself is never imported, and
nothing is downloaded: a file that is not on disk is an error, not a fetch.

The C++ side (``thrifty._core.StaticEmbedder``) holds the float32 table and does the pooling;
this class loads the files and hands the core a tokenize callback, so ``embed``/``embed_batch``
and every C++ consumer (the semantic cache) take plain texts.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from thrifty import _core
from thrifty._core import FailedPreconditionError, InvalidArgumentError

__all__ = ["StaticEmbedder"]

_EXTRA = "pip install 'thrifty[embeddings]'"
# WordLlama's Matryoshka dimensions: a table may be truncated to any of them.
_WORDLLAMA_DIMS = (64, 128, 256, 512, 1024)
# wordllama's own cache (WordLlama.DEFAULT_CACHE_DIR); searched, never written.
_WORDLLAMA_CACHE = Path.home() / ".cache" / "wordllama"
_TENSOR_KEYS = ("embedding.weight", "embeddings")  # WordLlama, model2vec
_PARALLEL_BATCH = 256  # texts from which tokenization uses encode_batch's thread pool


class StaticEmbedder(_core.StaticEmbedder):
    """WordLlama embeddings: mean-pooled static token vectors, L2-normalized.

    ``StaticEmbedder()`` loads the 256-d ``l2_supercat`` model that the `wordllama` package
    ships. ``dim`` may be 64 or 128 too (Matryoshka truncation of the same table, as
    ``WordLlama.load(trunc_dim=...)``), or 512/1024 when those weights are already in
    ``~/.cache/wordllama/weights``. ``weights_path`` and ``tokenizer_path`` load any
    WordLlama- or model2vec-format pair of files instead.

    The vectors equal ``WordLlama.load(...).embed(texts, norm=True)``: the tokenizer runs with
    no special tokens and no truncation, the token vectors are averaged, and the mean is
    normalized. Texts are tokenized in Python (under the GIL); pooling runs in C++ with the GIL
    released. Immutable; thread-safe.
    """

    def __init__(
        self,
        model: str = "l2_supercat",
        dim: Optional[int] = 256,
        *,
        weights_path: Union[str, Path, None] = None,
        tokenizer_path: Union[str, Path, None] = None,
    ) -> None:
        tokenizers = _require("tokenizers")
        safetensors_numpy = _require("safetensors.numpy")
        if (weights_path is None) != (tokenizer_path is None):
            raise InvalidArgumentError(
                "StaticEmbedder: pass both weights_path and tokenizer_path, or neither"
            )
        if weights_path is None:
            weights, tokenizer_file = _wordllama_files(model, dim)
            name = f"wordllama({model},dim={dim})"
        else:
            weights, tokenizer_file = Path(weights_path), Path(tokenizer_path)
            for path in (weights, tokenizer_file):
                if not path.is_file():
                    raise FailedPreconditionError(f"StaticEmbedder: no such file: {path}")
            name = f"static({weights.name},dim={dim})" if dim else f"static({weights.name})"

        table = _load_table(safetensors_numpy, weights, dim)
        tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        # WordLlamaInference pads (then masks the padding out) and never truncates.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        super().__init__(table, _tokenize_with(tokenizer), name=name)
        self._tokenizer = tokenizer
        self.model = model if weights_path is None else str(weights_path)

    @property
    def tokenizer(self) -> Any:
        """The `tokenizers.Tokenizer` in use (no special tokens, no truncation)."""
        return self._tokenizer

    def tokenize(self, texts: Sequence[str]) -> List[List[int]]:
        """The token ids the embedder pools, one list per text."""
        return _tokenize_with(self._tokenizer)(list(texts))


def _tokenize_with(tokenizer: Any):
    # A closure over the tokenizer alone: the C++ object keeps it, and it must not keep the
    # Python StaticEmbedder alive (a cycle through a C++ holder is never collected).
    def tokenize(texts: List[str]) -> List[List[int]]:
        # encode_batch's thread pool pays off only for large batches, and once used it makes
        # `tokenizers` warn in every forked worker (gunicorn, multiprocessing).
        if len(texts) < _PARALLEL_BATCH:
            return [tokenizer.encode(text, add_special_tokens=False).ids for text in texts]
        return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

    return tokenize


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise FailedPreconditionError(
            f"thrifty.StaticEmbedder needs the `{module.split('.')[0]}` package: {_EXTRA}"
        ) from error


def _package_dir(name: str) -> Optional[Path]:
    """The directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _wordllama_files(model: str, dim: Optional[int]) -> tuple[Path, Path]:
    if not re.fullmatch(r"[A-Za-z0-9_]+", model or ""):
        raise InvalidArgumentError(
            f"StaticEmbedder: model must be a WordLlama configuration name such as "
            f"'l2_supercat', got {model!r}"
        )
    if dim not in _WORDLLAMA_DIMS:
        raise InvalidArgumentError(
            f"StaticEmbedder: dim must be one of {list(_WORDLLAMA_DIMS)} for WordLlama, got {dim!r}"
        )
    package = _package_dir("wordllama")
    if package is None:
        raise FailedPreconditionError(
            f"thrifty.StaticEmbedder needs the `wordllama` package, which ships the WordLlama "
            f"weights and tokenizer: {_EXTRA}"
        )
    roots = [package, _WORDLLAMA_CACHE]
    tokenizer = _first_file(
        [
            root / sub / f"{model}_tokenizer_config.json"
            for root in roots
            for sub in ("tokenizers", "tokenizer")
        ]
    )
    # The smallest table with at least `dim` columns; it is truncated to `dim`.
    weights = _first_file(
        [
            root / "weights" / f"{model}_{size}.safetensors"
            for size in _WORDLLAMA_DIMS
            if size >= dim
            for root in roots
        ]
    )
    if weights is None or tokenizer is None:
        missing = "weights" if weights is None else "tokenizer"
        raise FailedPreconditionError(
            f"StaticEmbedder: no WordLlama {missing} for model {model!r} with dim >= {dim} in "
            f"{package} or {_WORDLLAMA_CACHE} (the wordllama package ships l2_supercat at 256 "
            f"dimensions; thrifty never downloads). Pass weights_path= and tokenizer_path= to "
            f"use other files."
        )
    return weights, tokenizer


def _first_file(paths: Sequence[Path]) -> Optional[Path]:
    return next((p for p in paths if p.is_file()), None)


def _load_table(safetensors_numpy: Any, path: Path, dim: Optional[int]) -> np.ndarray:
    tensors = safetensors_numpy.load_file(str(path))
    key = next((k for k in _TENSOR_KEYS if k in tensors), None)
    if key is None and len(tensors) == 1:
        key = next(iter(tensors))
    if key is None:
        raise InvalidArgumentError(
            f"StaticEmbedder: {path} holds tensors {sorted(tensors)}; expected one of "
            f"{list(_TENSOR_KEYS)}"
        )
    table = tensors[key]
    if table.ndim != 2:
        raise InvalidArgumentError(
            f"StaticEmbedder: tensor {key!r} in {path} has shape {table.shape}, expected "
            f"(vocab_size, dim)"
        )
    if dim is not None:
        if not 1 <= dim <= table.shape[1]:
            raise InvalidArgumentError(
                f"StaticEmbedder: dim must be in [1, {table.shape[1]}] for {path}, got {dim}"
            )
        table = table[:, :dim]
    return np.ascontiguousarray(table, dtype=np.float32)
