"""bundle.*: dicts of tensors (a coder's parameters, optimizer state) held as one handle."""
from __future__ import annotations

import torch

from .core import UserError, op


@op("bundle.get")
def get(bundle: dict, name: str):
    return bundle[name]


@op("bundle.copy_into")
def copy_into(dst: dict, src: dict, names: list[str] | None = None) -> None:
    """Copy src's tensors into dst's tensors of the same names (`names`, or all of dst's), in
    place (no autograd)."""
    keys = list(dst) if names is None else names
    missing = [k for k in keys if k not in src]
    if missing:
        raise UserError(f"cannot restore {', '.join(missing)}: not in the saved state")
    with torch.no_grad():
        for k in keys:
            dst[k].copy_(src[k])


@op("bundle.update")
def update(dst: dict, src: dict) -> None:
    """Set dst's entries to src's tensors (replacing or adding)."""
    dst.update(src)
