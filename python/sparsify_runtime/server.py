"""The one entry point the TypeScript bridge calls: dispatch(request_json) -> reply_json.

One bridge round trip carries a whole call. Exceptions never cross the bridge as
tracebacks: they come back as data and the TS side turns them into typed errors. Importing
this module registers every op (each op module registers its own); the test-only ops
(testing.py) only when SPARSIFY_TESTING=1, and the op files a tool brings (the benchmarks'
python/bench/bench_ops.py) only when SPARSIFY_RUNTIME_EXTENSIONS names them.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback

from .core import HANDLES, OPS, UserError, decode_args, encode_result

# Register the ops: one module per op prefix.
from . import activation_cache, bundle, data, dist, hooks, model, program, runtime, safetensors, state, tensor, tokenizer, wandb  # noqa: E402,F401

if os.environ.get("SPARSIFY_TESTING") == "1":
    from . import testing  # noqa: F401


def _load_extensions(paths: str) -> None:
    """Op modules by file path (separated by the OS path separator), each registering its own ops."""
    import importlib.util

    for path in filter(None, paths.split(os.pathsep)):
        name = "sparsify_extension_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"SPARSIFY_RUNTIME_EXTENSIONS: cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


_load_extensions(os.environ.get("SPARSIFY_RUNTIME_EXTENSIONS", ""))


def dispatch(request_json: str) -> str:
    try:
        req = json.loads(request_json)
        HANDLES.free(req.get("free", []))
        fn = OPS.get(req["op"])
        if fn is None:
            raise UserError(f"unknown runtime op '{req['op']}'")
        result = fn(**decode_args(req.get("args", {})))
        return json.dumps({"ok": True, "result": encode_result(result)}, allow_nan=False)
    except BaseException as exc:  # noqa: BLE001 - everything must come back as data
        if isinstance(exc, SystemExit):
            raise
        if isinstance(exc, UserError):
            first_line = " ".join(str(exc).split())
        else:
            message = f"{type(exc).__name__}: {exc}"
            first_line = " ".join(message.strip().splitlines()[:1]) or type(exc).__name__
        return json.dumps(
            {
                "ok": False,
                "error": {
                    "type": type(exc).__name__,
                    "message": first_line,
                    "traceback": traceback.format_exc(),
                    "user": isinstance(exc, UserError),
                },
            }
        )


def _die_with_parent() -> None:
    """Linux: the kernel kills us if the Node parent dies, so no orphan survives a SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() == 1:  # parent already gone before prctl took effect
                os._exit(1)
        except Exception:  # noqa: BLE001
            pass


def setup() -> None:
    _die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group; Node decides what happens
    # (e.g. save a checkpoint first), so the compute process must not die on its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
