"""state.*: trainer state as safetensors (no pickles): groups of named tensors in one file."""
from __future__ import annotations

from .core import Bundle, op
from .safetensors import save as save_tensors


@op("state.save")
def save(path: str, groups: dict, metadata: dict | None = None) -> None:
    flat = {f"{group}::{name}": t for group, bundle in groups.items() for name, t in bundle.items()}
    save_tensors(path, flat, metadata)


@op("state.load")
def load(path: str, device: str = "cpu") -> dict:
    from safetensors import safe_open

    groups: dict[str, Bundle] = {}
    with safe_open(path, framework="pt", device=str(device)) as f:
        for key in f.keys():
            group, name = key.split("::", 1) if "::" in key else ("", key)
            groups.setdefault(group, Bundle())[name] = f.get_tensor(key)
    return groups
