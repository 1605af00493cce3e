"""program.*: run the programs the TypeScript kernel compiler generates.

A program is Python source for one function (and the autograd classes it uses). It is
compiled once per content hash and run by id. Its globals are exactly NAMESPACE, the
counterpart of src/kernels/globals.ts (a test checks that they agree).
"""
from __future__ import annotations

import hashlib
import linecache

import torch
import torch.nn.functional as F

from . import dist, kernel_support
from .core import Bundle, UserError, op

class _LazyModule:
    """A module imported when a program first uses it: Triton costs an import only for the
    programs with Triton kernels, and its absence is one clear line."""

    def __init__(self, name: str):
        self._name = name
        self._module = None

    def _load(self):
        if self._module is None:
            import importlib

            try:
                self._module = importlib.import_module(self._name)
            except ImportError as exc:
                raise UserError(
                    f"this program runs a Triton kernel, but {self._name} is not installed in sparsify's Python ({exc}); "
                    "install it (pip install triton), or choose another --sparse_backward"
                ) from None
        return self._module

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self._load(), attr)


NAMESPACE = {
    "torch": torch,
    "F": F,
    "Bundle": Bundle,
    "all_reduce_": dist.all_reduce_,
    "all_reduce_grads_": dist.all_reduce_grads_,
    "broadcast_": dist.broadcast_,
    "broadcast_from": dist.broadcast_from,
    "reduce_": dist.reduce_,
    "triton": _LazyModule("triton"),
    "tl": _LazyModule("triton.language"),
    "dist_rank": dist.rank,
    "dist_world_size": dist.world_size,
    "addmm_relu": kernel_support.addmm_relu,
    "zero_scratch": kernel_support.zero_scratch,
}

PROGRAMS: dict[str, object] = {}


def get(program_id: str):
    try:
        return PROGRAMS[program_id]
    except KeyError:
        raise UserError(f"program {program_id} is not compiled in this runtime") from None


@op("program.compile")
def compile_program(source: str, entry: str, compile: bool = False) -> str:
    """exec the generated source once; return its id (a content hash) for program.run."""
    pid = hashlib.sha256(f"{compile}\n{source}".encode()).hexdigest()[:16]
    if pid in PROGRAMS:
        return pid
    scope = dict(NAMESPACE)
    if "@triton.jit" in source:
        # Triton's compiler reads its globals: the modules themselves, not stand-ins.
        scope["triton"] = _LazyModule("triton")._load()
        scope["tl"] = _LazyModule("triton.language")._load()
    filename = f"<sparsify-program {entry} {pid}>"
    # Keep the source visible to tracebacks (linecache), so errors point at generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile_source(source, filename), scope)
    fn = scope[entry]
    if compile and torch.cuda.is_available():
        fn = torch.compile(fn, dynamic=True)
    PROGRAMS[pid] = _clearing_scratch_on_error(fn)
    return pid


@op("program.release_scratch")
def release_scratch() -> None:
    """Drop the cached zero matrices of the gemm kernels (the memory goes back to torch's allocator)."""
    kernel_support.reset()


def _clearing_scratch_on_error(fn):
    # A program that fails midway may leave a scratch matrix dirty: forget them all.
    def run_program(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException:
            kernel_support.reset()
            raise

    return run_program


def compile_source(source: str, filename: str):
    # A function of its own: compile_program's `compile` argument hides the builtin there.
    return compile(source, filename, "exec")


@op("program.run")
def run(id: str, args: dict):
    return get(id)(**args)
