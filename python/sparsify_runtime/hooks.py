"""hooks.*: the batch runner: forward hooks by module name that call compiled programs.

This is generic machinery: which modules, which programs and with what arguments all come
from the TypeScript side. A hook program gets (inputs, outputs, mask, **args) for its module
and returns {"metrics": {...}} and, when it replaces the module's output, {"output": tensor}.
One run: install the hooks, run each batch, run the `after` programs, reduce the metrics.
"""
from __future__ import annotations

import contextlib
import time

import torch

from . import dist, program
from .core import UserError, op
from .model import first, hook_input


def _add_metrics(totals: dict, key: str, metrics: dict | None) -> None:
    if not metrics:
        return
    slot = totals.setdefault(key, {})
    for k, v in metrics.items():
        v = v.detach() if isinstance(v, torch.Tensor) else v
        slot[k] = slot[k] + v if k in slot else v


class _Run:
    """The state one hooks.run call shares between its hooks: metric totals, the token mask."""

    def __init__(self) -> None:
        self.totals: dict = {}
        self.mask: torch.Tensor | None = None


def _make_hook(run: _Run, specs: list):
    gather = any(s.get("gather") for s in specs)

    def hook(module, args, kwargs, output):
        inputs = hook_input(args, kwargs)
        outputs = first(output)
        mask = run.mask
        if gather:
            inputs, outputs, mask = dist.all_gather_cat(inputs), dist.all_gather_cat(outputs), dist.all_gather_cat(mask)
        replacement = None
        for spec in specs:
            if spec.get("program") is None:
                continue
            res = program.get(spec["program"])(inputs=inputs, outputs=outputs, mask=mask, **spec["args"])
            _add_metrics(run.totals, spec["key"], res.get("metrics"))
            if spec.get("replace"):
                replacement = res["output"]
        if replacement is None:
            return None
        if isinstance(output, tuple):
            return (replacement, *output[1:])
        return replacement

    return hook


def install(model, hooks: list, run: _Run) -> tuple[list, list]:
    """The (module, hook function) pairs to register for each batch, and the modules that
    transcoders replace (identity)."""
    base = model.base_model
    by_module: dict[str, list] = {}
    for h in hooks:
        by_module.setdefault(h["module"], []).append(h)
    pairs, identity = [], []
    for name, specs in by_module.items():
        try:
            mod = base.get_submodule(name)
        except AttributeError:
            raise UserError(f"module '{name}' not found in the model") from None
        if any(s.get("identity") for s in specs):
            identity.append(mod)
        pairs.append((mod, _make_hook(run, specs)))
    return pairs, identity


@contextlib.contextmanager
def _identity(modules):
    """Temporarily make modules return their (first) input: transcoders replace them."""
    saved = []
    try:
        for mod in modules:
            saved.append((mod, mod.forward))
            mod.forward = lambda *args, **kwargs: hook_input(args, kwargs)
        yield
    finally:
        for mod, fwd in saved:
            mod.forward = fwd


def run_batch(model, input_ids, pairs: list, identity: list, loss: dict | None, run: _Run, exclude) -> None:
    """One forward pass with the hooks; with a loss program, the model runs with grad and the
    loss program backpropagates (end-to-end training)."""
    run.mask = (~torch.isin(input_ids, exclude)).flatten() if exclude is not None else None
    clean_logits = None
    if loss and loss.get("clean"):
        with torch.no_grad():
            clean_logits = model(input_ids).logits
    registered = [mod.register_forward_hook(h, with_kwargs=True) for mod, h in pairs]
    try:
        with _identity(identity):
            if loss:
                with torch.enable_grad():
                    logits = model(input_ids).logits
                    res = program.get(loss["program"])(logits=logits, input_ids=input_ids, clean_logits=clean_logits, **loss["args"])
                _add_metrics(run.totals, loss.get("key", "loss"), res.get("metrics"))
            else:
                with torch.no_grad():
                    model(input_ids)
    finally:
        for r in registered:
            r.remove()
        run.mask = None


def reduce(totals: dict, how: str | None, stop: bool) -> tuple[dict, bool]:
    """Metric tensors to floats with one device sync; across ranks, averaged ('mean') or
    collected from their owners ('merge'). The stop flag rides along, so every rank stops
    after the same step."""
    places, tensors = [], []
    metrics: dict = {}
    for key, values in totals.items():
        metrics[key] = {}
        for m, v in values.items():
            if isinstance(v, torch.Tensor):
                places.append((key, m))
                tensors.append(v.detach().float().reshape(()))
            else:
                metrics[key][m] = v
    if tensors:
        for (key, m), value in zip(places, torch.stack(tensors).tolist()):
            metrics[key][m] = value
    if how:
        metrics["__stop__"] = {"stop": 1.0 if stop else 0.0}
        metrics = dist.merge_metrics(metrics, how)
        stop = metrics.pop("__stop__", {}).get("stop", 0.0) > 0
    return metrics, bool(stop)


def _check_vocab(input_ids: torch.Tensor, vocab_size: int, first_row: int) -> None:
    if input_ids.numel() and int(input_ids.max()) >= vocab_size:
        r, c = (input_ids >= vocab_size).nonzero()[0].tolist()
        raise UserError(
            f"token id {int(input_ids[r, c])} at row {first_row + r}, position {c} of the data is not in the model's vocabulary "
            f"of {vocab_size} tokens; was the data tokenized for another model?"
        )


@op("hooks.run")
def run(
    model,
    rows,
    batches: list,
    hooks: list,
    device: str = "cpu",
    exclude_tokens: list | None = None,
    loss: dict | None = None,
    after: list | None = None,
    reduce_metrics: str | None = None,
    stop: bool = False,
    vocab_size: int | None = None,
) -> dict:
    """Run the model on each batch of rows with program hooks, then the `after` programs.

    batches: [[start, end], ...] rows of `rows` (several for gradient accumulation).
    hooks: [{"key", "module", "program", "args", "replace"?, "identity"?, "gather"?}]; hooks
      on the same module run in order; `key` names their metrics. A hook with "gather" sees
      inputs, outputs and mask concatenated from every rank (every rank must list the module;
      "program": None only takes part in the gather).
    loss: None (the model runs under no_grad; hooks backprop their own losses) or
      {"key", "program", "args", "clean"}: see run_batch.
    after: [{"key", "program", "args"}] run once after the last batch (the optimizer step).
    vocab_size: token ids must be below it (checked on the CPU rows, before the device sees them).
    Returns {"metrics": {key: {metric: float}} summed over batches, "tokens", "stop", "seconds"}.
    """
    started = time.perf_counter()
    state = _Run()
    exclude = torch.tensor(exclude_tokens, device=device) if exclude_tokens else None
    pairs, identity = install(model, hooks, state)
    tokens = 0
    for start, end in batches:
        input_ids = rows.rows(start, end)
        if vocab_size is not None:
            _check_vocab(input_ids, vocab_size, start)
        input_ids = input_ids.to(device)
        tokens += input_ids.numel()
        run_batch(model, input_ids, pairs, identity, loss, state, exclude)
    for spec in after or []:
        out = program.get(spec["program"])(**spec["args"])
        _add_metrics(state.totals, spec["key"], (out or {}).get("metrics"))
    metrics, stop = reduce(state.totals, reduce_metrics, stop)
    # Compute time, for the benchmark's overhead accounting.
    return {"metrics": metrics, "tokens": tokens, "stop": stop, "seconds": time.perf_counter() - started}
