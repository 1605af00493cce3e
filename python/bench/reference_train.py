"""The reference library (EleutherAI/sparsify 1.3.0) trained on a bench's model and tokens,
for `npm run bench` and `npm run bench:gpu`: the configuration of the project's run, timed per step through a
stand-in `wandb` that records each step's metrics with a timestamp.

Usage: python reference_train.py MODEL_DIR TOKENS_BIN CTX BATCH WARMUP STEPS EXPANSION K FVU_STEPS OUT_JSON
(the reference, its schedulefree and simple_parsing, and datasets on PYTHONPATH).
"""
import importlib.machinery
import json
import sys
import tempfile
import time
import types

import torch

LOGS: list = []


def fake_wandb() -> types.ModuleType:
    m = types.ModuleType("wandb")
    # transformers asks importlib whether wandb is installed: a module needs a spec for that.
    m.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    m.init = lambda **kw: None
    m.log = lambda info, step=None: LOGS.append((time.perf_counter(), step, {k: float(v) for k, v in info.items() if isinstance(v, (int, float))}))
    m.finish = lambda: None
    return m


def datasets_or_stand_in() -> None:
    """The reference imports `datasets` for type names alone on this path (a MemmapDataset);
    where it does not import (a CUDA image without it, or a wheel for another Python), a stand-in
    with those names lets the reference load."""
    try:
        import datasets  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        print(f"reference_train: datasets does not import ({exc}); using a stand-in for its type names")
        m = types.ModuleType("datasets")
        m.__spec__ = importlib.machinery.ModuleSpec("datasets", None)
        for name in ("Dataset", "DatasetDict", "IterableDataset"):
            setattr(m, name, type(name, (), {}))
        m.load_dataset = m.load_from_disk = lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("datasets is not installed"))
        sys.modules["datasets"] = m


def main() -> None:
    model_dir, bin_path, ctx, batch, warmup, steps, expansion, k, fvu_steps, out = sys.argv[1:11]
    ctx, batch, warmup, steps, expansion, k, fvu_steps = map(int, (ctx, batch, warmup, steps, expansion, k, fvu_steps))
    sys.modules["wandb"] = fake_wandb()
    datasets_or_stand_in()
    from transformers import AutoModel

    from sparsify import SaeConfig, Trainer, TrainConfig
    from sparsify.data import MemmapDataset

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModel.from_pretrained(model_dir, dtype=dtype, device_map={"": "cuda" if cuda else "cpu"})
    data = MemmapDataset(bin_path, ctx, max_examples=(warmup + steps) * batch)
    with tempfile.TemporaryDirectory() as save:
        cfg = TrainConfig(SaeConfig(expansion_factor=expansion, k=k), batch_size=batch, optimizer="signum", log_to_wandb=True, wandb_log_frequency=1, save_every=10**9, save_dir=save, run_name="reference")
        trainer = Trainer(cfg, data, model)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer.fit()
    # Steady state: from the end of the last warm-up step to the end of the last step.
    t0 = LOGS[warmup - 1][0]
    t1 = LOGS[-1][0]
    tokens = (len(LOGS) - warmup) * batch * ctx
    last = [info for _, _, info in LOGS[-fvu_steps:]]
    result = {
        "tokens_per_second": tokens / (t1 - t0),
        "steps": len(LOGS),
        # The mean over the last steps, as the project's figure.
        "fvu": {key.split("/", 1)[1]: sum(i[key] for i in last) / len(last) for key in last[-1] if key.startswith("fvu/")},
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
