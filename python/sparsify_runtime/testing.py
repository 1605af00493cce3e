"""testing.*: ops for tests and benchmarks only, registered when the runtime starts with
SPARSIFY_TESTING=1 (never in production: testing.eval runs arbitrary code)."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .core import op


@op("testing.eval")
def eval_python(code: str, env: dict | None = None):
    """Run a Python snippet with `env` bound and return its `result` variable."""
    scope = {"torch": torch, "F": F, **(env or {})}
    exec(code, scope)
    return scope.get("result")


@op("testing.sleep")
def sleep(seconds: float) -> None:
    time.sleep(seconds)
