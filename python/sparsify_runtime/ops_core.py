"""Handles, tensors in and out, and the program compiler/runner."""
from __future__ import annotations

import base64
import hashlib
import math
import sys

import torch
import torch.nn.functional as F

from .server import HANDLES, Bundle, UserError, op

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


@op("runtime.free")
def free(ids: list[int]) -> None:
    HANDLES.free(ids)


@op("runtime.eval")
def eval_python(code: str, env: dict | None = None):
    """Run a Python snippet with `env` bound and return its `result` variable.
    For tests and debugging; the training loop never uses it."""
    scope = {"torch": torch, "F": F, "math": math, **(env or {})}
    exec(code, scope)
    return scope.get("result")


@op("runtime.sleep")
def sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


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
def grad_of(tensor: torch.Tensor):
    return tensor.grad


@op("bundle.get")
def bundle_get(bundle: dict, name: str):
    return bundle[name]


# ---------------------------------------------------------------- programs

PROGRAMS: dict[str, object] = {}
PROGRAM_NAMESPACE = {"torch": torch, "F": F, "math": math, "Bundle": Bundle}


@op("program.compile")
def compile_program(source: str, entry: str, compile: bool = False) -> str:
    """exec the generated source once; return its id (a content hash) for program.run."""
    pid = hashlib.sha256(f"{compile}\n{source}".encode()).hexdigest()[:16]
    if pid in PROGRAMS:
        return pid
    scope = dict(PROGRAM_NAMESPACE)
    code = compile_source(source, f"<sparsify-program {entry} {pid}>")
    exec(code, scope)
    fn = scope[entry]
    if compile and torch.cuda.is_available():
        fn = torch.compile(fn, dynamic=True)
    PROGRAMS[pid] = fn
    return pid


def compile_source(source: str, filename: str):
    # Keep the source visible to tracebacks (linecache), so errors point at generated lines.
    import linecache

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compile(source, filename, "exec")


@op("program.run")
def run_program(id: str, args: dict):
    try:
        fn = PROGRAMS[id]
    except KeyError:
        raise UserError(f"program {id} is not compiled in this runtime") from None
    return fn(**args)


@op("bundle.copy_into")
def bundle_copy_into(dst: dict, src: dict) -> None:
    """Copy src's tensors into dst's tensors of the same names, in place (no autograd)."""
    missing = [k for k in dst if k not in src]
    if missing:
        raise UserError(f"cannot restore {', '.join(missing)}: not in the saved state")
    with torch.no_grad():
        for k, t in dst.items():
            t.copy_(src[k])


@op("bundle.update")
def bundle_update(dst: dict, src: dict) -> None:
    """Set dst's entries to src's tensors (replacing or adding)."""
    dst.update(src)
