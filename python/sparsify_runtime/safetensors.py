"""safetensors.*: safetensors files: header inspection, loading with checks, atomic writes."""
from __future__ import annotations

import json
import os
import struct

from .core import Bundle, UserError, op

# safetensors dtype codes -> our dtype names
ST_DTYPES = {
    "F32": "float32",
    "F64": "float64",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "U8": "uint8",
    "BOOL": "bool",
}
ITEM_SIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2, "uint8": 1, "bool": 1}


@op("safetensors.header")
def read_header(path: str) -> dict:
    """Tensor names, shapes and dtypes, after checking that the file is whole.

    Reading the header ourselves lets a truncated or corrupt file fail with its name and what
    is wrong, before any tensor is used."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise UserError(f"{path}: not a safetensors file (only {size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise UserError(f"{path}: corrupt or truncated safetensors file (header of {n} bytes, file of {size})")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path}: corrupt safetensors file (its header is not valid JSON)") from None
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    data_len = size - 8 - n
    for name, entry in header.items():
        dtype = ST_DTYPES.get(entry.get("dtype"))
        if dtype is None:
            raise UserError(f"{path}: tensor '{name}' has unsupported dtype {entry.get('dtype')}")
        start, end = entry["data_offsets"]
        count = 1
        for d in entry["shape"]:
            count *= d
        if end > data_len or end - start != count * ITEM_SIZE[dtype]:
            raise UserError(
                f"{path}: corrupt or truncated safetensors file (tensor '{name}' needs bytes {start}-{end}, "
                f"the data section has {data_len})"
            )
        tensors[name] = {"shape": entry["shape"], "dtype": dtype}
    return {"tensors": tensors, "metadata": metadata}


@op("safetensors.load")
def load(path: str, device: str = "cpu", names: list[str] | None = None, requires_grad: bool | list[str] = False, narrow: dict | None = None) -> Bundle:
    """The tensors `names` (all by default); floating ones require grad when `requires_grad`
    is true or names them. `narrow` reads only part of some: {name: [dim, start, length]}
    (the rest of the tensor is never read)."""
    from safetensors import safe_open

    out = Bundle()
    with safe_open(path, framework="pt", device=str(device)) as f:
        keys = names if names is not None else list(f.keys())
        for k in keys:
            if narrow and k in narrow:
                dim, start, length = narrow[k]
                t = f.get_slice(k)[tuple([slice(None)] * int(dim) + [slice(int(start), int(start) + int(length))])]
            else:
                t = f.get_tensor(k)
            wanted = k in requires_grad if isinstance(requires_grad, list) else requires_grad
            if wanted and t.is_floating_point():
                t.requires_grad_(True)
            out[k] = t
    return out


@op("safetensors.save")
def save(path: str, tensors: dict, metadata: dict | None = None) -> None:
    """Write to a temporary file next to the target, fsync, then rename: a crash mid-save
    leaves the previous file whole."""
    from safetensors.torch import save_file

    tmp = f"{path}.tmp-{os.getpid()}"
    plain = {k: v.detach().contiguous() for k, v in tensors.items()}
    try:
        save_file(plain, tmp, metadata=metadata)
        # safetensors writes its files 0600: give them the mode every other file gets (the umask's).
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


