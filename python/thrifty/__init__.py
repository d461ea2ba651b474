"""thrifty: cut what LLM applications pay for inference without cutting the quality they need."""

from thrifty._core import (
    AlreadyExistsError,
    DeadlineExceededError,
    Error,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    ModelSpec,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
    UnimplementedError,
    Usage,
    canonical_request,
    estimate_tokens,
    request_key,
    tokenizer_family,
)
from thrifty._version import __version__
from thrifty.catalog import Catalog

__all__ = [
    "AlreadyExistsError",
    "Catalog",
    "DeadlineExceededError",
    "Error",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "ModelSpec",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnavailableError",
    "UnimplementedError",
    "Usage",
    "__version__",
    "canonical_request",
    "estimate_tokens",
    "request_key",
    "tokenizer_family",
]
