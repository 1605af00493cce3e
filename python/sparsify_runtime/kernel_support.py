"""Two generic helpers for generated programs (listed in src/kernels/globals.ts): a linear layer
with its bias and relu fused into the matrix product, and reusable all-zero scratch matrices.
They hold no SAE math; they are what torch offers, arranged so that GPUs do less work."""
from __future__ import annotations

import torch

_SCRATCH: dict = {}
_SCRATCH_KEPT = 2


def _autocast_dtype(x: torch.Tensor) -> torch.dtype:
    kind = x.device.type
    try:
        return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
    except TypeError:  # torch < 2.4 takes no device type
        return torch.get_autocast_gpu_dtype() if kind == "cuda" and torch.is_autocast_enabled() else x.dtype


def addmm_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(x @ weight.T + bias) as one matrix product with the bias and relu in its epilogue
    (cuBLASLt on CUDA), in autocast's precision when autocast is on, as F.linear would be."""
    dt = _autocast_dtype(x)
    return torch._addmm_activation(bias.to(dt), x.to(dt), weight.to(dt).t())


def zero_scratch(rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
    """A cached all-zero [rows, cols] matrix of like's dtype and device, so that a scatter into a
    dense matrix needs no fill of the whole matrix each time. Whoever writes into it restores the
    zeros (scatter 0 back) before anything else uses it; a program that fails clears the cache
    (reset). The two most recently used shapes are kept."""
    key = (rows, cols, like.dtype, like.device)
    t = _SCRATCH.pop(key, None)
    if t is None:
        t = torch.zeros(rows, cols, dtype=like.dtype, device=like.device)
    _SCRATCH[key] = t
    while len(_SCRATCH) > _SCRATCH_KEPT:
        _SCRATCH.pop(next(iter(_SCRATCH)))
    return t


def reset() -> None:
    """Forget every scratch matrix (after a failed program, which may have left one dirty)."""
    _SCRATCH.clear()
