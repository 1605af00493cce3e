"""runtime.*: what the runtime runs on."""
from __future__ import annotations

import sys

import torch

from .core import op


@op("runtime.info")
def info() -> dict:
    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torch": torch.__version__,
        "cuda": cuda,
        "device_count": torch.cuda.device_count() if cuda else 0,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
    }
