"""Imported first, without torch, so a broken environment reports itself as data."""
import json
import sys

_server = None

# The lower bounds of requirements.txt, checked at start so that an older interpreter set with
# SPARSIFY_PYTHON says what to upgrade instead of failing later in a call.
MINIMUM = {"torch": (2, 3), "transformers": (4, 56), "safetensors": (0, 4)}


def _version(text: str) -> tuple:
    parts = []
    for p in text.split("+")[0].split(".")[:2]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_versions() -> None:
    import importlib

    old = []
    for name, least in MINIMUM.items():
        have = importlib.import_module(name).__version__
        if _version(have) < least:
            old.append(f"{name} {have} (needs >= {'.'.join(map(str, least))})")
    if old:
        raise RuntimeError(f"too old for sparsify: {', '.join(old)}; upgrade them (pip install -U -r requirements.txt)")


def start() -> str:
    """Import the runtime (torch and all); reply with what it runs on, or why it cannot start."""
    global _server
    try:
        check_versions()
        from . import server
        from .runtime import info

        server.setup()
        _server = server
        return json.dumps({"ok": True, "info": info()})
    except BaseException as exc:  # noqa: BLE001
        return json.dumps({"ok": False, "message": f"{type(exc).__name__}: {exc}", "executable": sys.executable})


def dispatch(request_json: str) -> str:
    return _server.dispatch(request_json)
