"""The one entry point the TypeScript bridge calls: dispatch(request_json) -> reply_json.

Requests and replies are JSON strings so that one bridge round trip carries a whole call.
Python objects that are not JSON (tensors, models, dicts of tensors) stay here in a handle
table and travel as {"$h": id}. Exceptions never cross the bridge as tracebacks: they come
back as data and the TS side turns them into typed errors.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import traceback
from typing import Any, Callable

OPS: dict[str, Callable[..., Any]] = {}


class UserError(Exception):
    """An error whose message is meant for the user as it is (no Python type prefix)."""


def op(name: str):
    def register(fn):
        OPS[name] = fn
        return fn

    return register


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


def _is_json_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, str, float))


def decode_args(v: Any) -> Any:
    if isinstance(v, dict):
        if "$h" in v and len(v) == 1:
            return HANDLES.get(v["$h"])
        if "$f" in v and len(v) == 1:  # non-finite floats, which JSON cannot spell
            return float(v["$f"])
        return {k: decode_args(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_args(x) for x in v]
    return v


def describe(obj: Any) -> dict:
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
    if _is_json_scalar(v):
        return v
    if isinstance(v, (list, tuple)):
        return [encode_result(x) for x in v]
    if type(v) is dict and all(isinstance(k, str) for k in v):
        return {k: encode_result(x) for k, x in v.items()}
    return describe(v)  # tensors, models, Bundles: kept here, referred to by handle


class Bundle(dict):
    """A dict of tensors that travels as one handle (a coder's parameters, optimizer state)."""


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
        if isinstance(exc, (SystemExit,)):
            raise
        message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        first_line = " ".join(message.strip().splitlines()[:1]) or type(exc).__name__
        if isinstance(exc, UserError):
            first_line = " ".join(message.split())
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


def _setup() -> None:
    _die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group; Node decides what happens
    # (e.g. save a checkpoint first), so the compute process must not die on its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_setup()

# Register the ops (imports are for their side effect).
from . import ops_core  # noqa: E402,F401
from . import ops_io  # noqa: E402,F401
from . import ops_model  # noqa: E402,F401
from . import ops_data  # noqa: E402,F401
from . import ops_hooks  # noqa: E402,F401
from . import ops_state  # noqa: E402,F401
from . import ops_wandb  # noqa: E402,F401
from . import ops_dist  # noqa: E402,F401
