"""runtime.*: what the runtime runs on, and how it talks (progress bars)."""
from __future__ import annotations

import sys

import torch

from .core import op


# Hugging Face libraries' own progress bars (weight loading, dataset maps, downloads) are off
# unless asked for: an app that embeds sparsify does not want them on its stderr.
_settings = {"progress_bars": False}


@op("runtime.configure")
def configure(progress_bars: bool | None = None, matmul_precision: str | None = None) -> dict:
    if progress_bars is not None:
        _settings["progress_bars"] = bool(progress_bars)
    if matmul_precision is not None:
        # "high": TF32 tensor cores for float32 matmuls on GPUs that have them (no effect on CPU).
        import torch

        torch.set_float32_matmul_precision(matmul_precision)
        _settings["matmul_precision"] = matmul_precision
    return dict(_settings)


def apply_progress_bars(*libraries: str) -> None:
    """Turn the named libraries' progress bars on or off as configured (before they work)."""
    on = _settings["progress_bars"]
    for name in libraries:
        if name == "datasets":
            import datasets

            (datasets.enable_progress_bars if on else datasets.disable_progress_bars)()
        elif name == "transformers":
            from transformers.utils import logging

            (logging.enable_progress_bar if on else logging.disable_progress_bar)()
        elif name == "huggingface_hub":
            from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

            (enable_progress_bars if on else disable_progress_bars)()


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
