"""wandb.*: Weights & Biases logging, when wandb is importable (offline mode needs no network)."""
from __future__ import annotations

from .core import op

_run = None


@op("wandb.init")
def init(project: str, name: str | None, config: dict) -> dict:
    global _run
    try:
        import wandb
    except ImportError:
        return {"ok": False, "reason": "wandb is not installed", "missing": True}
    try:
        _run = wandb.init(project=project, name=name, config=config, save_code=False)
    except Exception as exc:  # noqa: BLE001 - no login, no network: training goes on
        return {"ok": False, "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return {"ok": True, "url": getattr(_run, "url", None)}


@op("wandb.log")
def log(metrics: dict, step: int) -> None:
    if _run is not None:
        _run.log(metrics, step=step)


@op("wandb.finish")
def finish() -> None:
    global _run
    if _run is not None:
        _run.finish()
        _run = None
