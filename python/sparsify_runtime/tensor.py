"""tensor.*: tensors in and out of JS, as bytes, and dtype names."""
from __future__ import annotations

import base64

import torch

from .core import UserError, op

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


def dtype_of(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise UserError(f"unknown dtype '{name}' (allowed: {', '.join(DTYPES)})") from None


@op("tensor.from_bytes")
def from_bytes(data: str, shape: list[int], dtype: str, device: str = "cpu", requires_grad: bool = False):
    raw = bytearray(base64.b64decode(data))
    dt = dtype_of(dtype)
    t = torch.frombuffer(raw, dtype=dt) if raw else torch.empty(0, dtype=dt)
    t = t.reshape(shape).to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


@op("tensor.to_bytes")
def to_bytes(tensor: torch.Tensor) -> dict:
    t = tensor.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:  # no JS typed array for bf16: widen
        t = t.float()
    return {
        "data": base64.b64encode(t.numpy().tobytes()).decode("ascii"),
        "shape": list(t.shape),
        "dtype": str(t.dtype).removeprefix("torch."),
    }


@op("tensor.grad")
def grad(tensor: torch.Tensor):
    return tensor.grad
