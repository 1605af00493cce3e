"""Imported first, without torch, so a broken environment reports itself as data."""
import json
import sys

_server = None


def start() -> str:
    """Import the runtime (torch and all); reply with what it runs on, or why it cannot start."""
    global _server
    try:
        from . import server
        from .runtime import info

        server.setup()
        _server = server
        return json.dumps({"ok": True, "info": info()})
    except BaseException as exc:  # noqa: BLE001
        return json.dumps({"ok": False, "message": f"{type(exc).__name__}: {exc}", "executable": sys.executable})


def dispatch(request_json: str) -> str:
    return _server.dispatch(request_json)
