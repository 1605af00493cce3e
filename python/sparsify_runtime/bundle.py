"""bundle.*: dicts of tensors (a coder's parameters, optimizer state) held as one handle."""
from __future__ import annotations

import torch

from .core import UserError, op


@op("bundle.get")
def get(bundle: dict, name: str):
    return bundle[name]


@op("bundle.copy_into")
def copy_into(dst: dict, src: dict) -> None:
    """Copy src's tensors into dst's tensors of the same names, in place (no autograd)."""
    missing = [k for k in dst if k not in src]
    if missing:
        raise UserError(f"cannot restore {', '.join(missing)}: not in the saved state")
    with torch.no_grad():
        for k, t in dst.items():
            t.copy_(src[k])


@op("bundle.update")
def update(dst: dict, src: dict) -> None:
    """Set dst's entries to src's tensors (replacing or adding)."""
    dst.update(src)
