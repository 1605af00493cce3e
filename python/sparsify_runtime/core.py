"""The runtime's core: the op registry, the handle table, user errors and bundles.

Every op module imports from here; this module imports no op module, so the package has no
import cycle. Requests and replies are JSON; Python objects that are not JSON (tensors,
models, bundles) stay in the handle table and travel as {"$h": id}.
"""
from __future__ import annotations

import math
from typing import Any, Callable

OPS: dict[str, Callable[..., Any]] = {}


class UserError(Exception):
    """An error whose message is meant for the user as it is (no Python type prefix)."""


def op(name: str):
    """Register a function as the runtime op `name` (its module is the op's prefix)."""

    def register(fn):
        if name in OPS:
            raise RuntimeError(f"runtime op '{name}' registered twice")
        OPS[name] = fn
        return fn

    return register


class Bundle(dict):
    """A dict of tensors that travels as one handle (a coder's parameters, optimizer state)."""


class Handles:
    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self.next_id = 1

    def put(self, obj: Any) -> int:
        hid = self.next_id
        self.next_id += 1
        self.objects[hid] = obj
        return hid

    def get(self, hid: int) -> Any:
        try:
            return self.objects[hid]
        except KeyError:
            raise UserError(f"handle {hid} is unknown (it was freed or never existed)") from None

    def free(self, ids: list[int]) -> None:
        for hid in ids:
            self.objects.pop(hid, None)


HANDLES = Handles()


def decode_args(v: Any) -> Any:
    """Request arguments: handles become their objects, {"$f": "inf"} a float."""
    if isinstance(v, dict):
        if "$h" in v and len(v) == 1:
            return HANDLES.get(v["$h"])
        if "$f" in v and len(v) == 1:  # non-finite floats, which JSON cannot spell
            return float(v["$f"])
        return {k: decode_args(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_args(x) for x in v]
    return v


def _describe(obj: Any) -> dict:
    import torch

    hid = HANDLES.put(obj)
    if isinstance(obj, torch.Tensor):
        return {
            "$h": hid,
            "kind": "tensor",
            "shape": list(obj.shape),
            "dtype": str(obj.dtype).removeprefix("torch."),
            "device": str(obj.device),
        }
    return {"$h": hid, "kind": type(obj).__name__}


def encode_result(v: Any) -> Any:
    """JSON-able values pass through; anything else becomes a handle."""
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$f": repr(v)}
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [encode_result(x) for x in v]
    if type(v) is dict and all(isinstance(k, str) for k in v):
        return {k: encode_result(x) for k, x in v.items()}
    return _describe(v)  # tensors, models, Bundles: kept here, referred to by handle
