"""Imported first, without torch, so a broken environment reports itself as data."""
import json
import sys

_server = None


def start() -> str:
    global _server
    try:
        from . import server

        _server = server
        return json.dumps({"ok": True})
    except BaseException as exc:  # noqa: BLE001
        return json.dumps({"ok": False, "message": f"{type(exc).__name__}: {exc}", "executable": sys.executable})


def dispatch(request_json: str) -> str:
    return _server.dispatch(request_json)
