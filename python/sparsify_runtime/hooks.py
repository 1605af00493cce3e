"""hooks.*: the batch runner: forward passes with hooks by module name that call compiled
programs.

This is generic machinery: which modules, which programs and with what arguments all come
from the TypeScript side. For each batch of rows, one or more forward passes run in order,
each with its own hooks and, optionally, a program on the logits; they share the batch, its
token mask and a per-batch `context` dict, into which any program's `keep` output goes, so a
later pass can use what an earlier one kept (clean log-probs, a coder's reconstruction).

A hook program gets (inputs, outputs, mask, context, **args) for its module and returns
{"metrics": {...}}, {"keep": {...}} and, when it replaces the module's output,
{"output": tensor}. A logits program gets (logits, input_ids, mask, context, **args).
"""
from __future__ import annotations

import contextlib
import time

import torch

from . import activation_cache, dist, program
from .core import UserError, op
from .model import first, hook_input


def _add_metrics(totals: dict, key: str, metrics: dict | None) -> None:
    if not metrics:
        return
    slot = totals.setdefault(key, {})
    for k, v in metrics.items():
        v = v.detach() if isinstance(v, torch.Tensor) else v
        slot[k] = slot[k] + v if k in slot else v


class _Batch:
    """What the passes over one batch share: the token mask, the context, the metric totals."""

    def __init__(self, totals: dict, mask, context: dict) -> None:
        self.totals = totals
        self.mask = mask
        self.context = context

    def take(self, key: str, result: dict | None) -> dict:
        result = result or {}
        _add_metrics(self.totals, key, result.get("metrics"))
        if result.get("keep"):
            self.context.update(result["keep"])
        return result


def _run_specs(state: _Batch, specs: list, inputs, outputs):
    """A module's hook programs, in order, on its inputs and outputs; returns the replacement output, if any."""
    mask = state.mask
    if any(s.get("gather") for s in specs):
        inputs, outputs, mask = dist.all_gather_cat(inputs), dist.all_gather_cat(outputs), dist.all_gather_cat(mask)
    replacement = None
    for spec in specs:
        if spec.get("program") is None:
            continue
        res = state.take(spec["key"], program.get(spec["program"])(inputs=inputs, outputs=outputs, mask=mask, context=state.context, **spec["args"]))
        if spec.get("replace"):
            replacement = res["output"]
    return replacement


def _make_hook(batch: list, specs: list):
    """One forward hook for a module, running its specs' programs in order (batch[0] is the current _Batch)."""

    def hook(module, args, kwargs, output):
        replacement = _run_specs(batch[0], specs, hook_input(args, kwargs), first(output))
        if replacement is None:
            return None
        if isinstance(output, tuple):
            return (replacement, *output[1:])
        return replacement

    return hook


class _Pass:
    """One forward pass's hooks, installed for each batch."""

    def __init__(self, model, spec: dict, batch: list) -> None:
        by_module: dict[str, list] = {}
        for h in spec.get("hooks", []):
            by_module.setdefault(h["module"], []).append(h)
        self.by_module = by_module
        self.logits = spec.get("logits")
        self.grad = bool(spec.get("grad", False))
        self.pairs, self.identity = [], []
        if isinstance(model, activation_cache.Reader):
            if self.logits or any(s.get("replace") for specs in by_module.values() for s in specs):
                raise UserError("cached activations can train with loss_fn fvu only: ce and kl need the model")
            return
        base = model.base_model
        for name, specs in by_module.items():
            try:
                mod = base.get_submodule(name)
            except AttributeError:
                raise UserError(f"module '{name}' not found in the model") from None
            if any(s.get("identity") for s in specs):
                self.identity.append(mod)
            self.pairs.append((mod, _make_hook(batch, specs)))


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


def run_pass(model, input_ids, p: _Pass, state: _Batch) -> None:
    """One forward pass with its hooks. Without a logits program the base model runs (no LM
    head); with one, the whole model, and the program gets the logits. From cached
    activations, the hooks' programs run on the cache's tensors instead of a forward."""
    if isinstance(model, activation_cache.Reader):
        with torch.set_grad_enabled(p.grad):
            for name, specs in p.by_module.items():
                inputs = model.read(f"in/{name}") if model.has(f"in/{name}") else None
                _run_specs(state, specs, inputs, model.read(f"out/{name}"))
        return
    registered = [mod.register_forward_hook(h, with_kwargs=True) for mod, h in p.pairs]
    try:
        with _identity(p.identity), torch.set_grad_enabled(p.grad):
            if p.logits:
                logits = model(input_ids).logits
                fn = program.get(p.logits["program"])
                state.take(p.logits["key"], fn(logits=logits, input_ids=input_ids, mask=state.mask, context=state.context, **p.logits["args"]))
            else:
                model.base_model(input_ids)
    finally:
        for r in registered:
            r.remove()


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
                tensors.append(v.detach().double().reshape(()))
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
    passes: list,
    device: str = "cpu",
    exclude_tokens: list | None = None,
    after: list | None = None,
    reduce_metrics: str | None = None,
    stop: bool = False,
    vocab_size: int | None = None,
) -> dict:
    """Run each batch of rows through the passes, then the `after` programs.

    batches: [[start, end] | {"rows": [i, ...]}, ...] rows of `rows` (several for gradient
      accumulation). `model` may be an activation_cache.Reader (then also `rows`): the hooks'
      programs run on its cached tensors.
    passes: [{"hooks": [...], "logits": {"key", "program", "args"} | None, "grad": bool}], run
      in order on every batch. hooks: [{"key", "module", "program", "args", "replace"?,
      "identity"?, "gather"?}]; hooks on the same module run in order; `key` names their
      metrics. A hook with "gather" sees inputs, outputs and mask concatenated from every rank
      (every rank must list the module; "program": None only takes part in the gather).
    exclude_tokens: token ids whose positions the mask leaves out.
    after: [{"key", "program", "args"}] run once after the last batch (an optimizer step).
    vocab_size: token ids must be below it (checked on the CPU rows, before the device sees them).
    Returns {"metrics": {key: {metric: float}} summed over batches, "tokens", "stop", "seconds"}.
    """
    started = time.perf_counter()
    totals: dict = {}
    current: list = [None]  # the batch the hooks see
    prepared = [_Pass(model, spec, current) for spec in passes]
    exclude = torch.tensor(exclude_tokens, device=device) if exclude_tokens else None
    tokens = 0
    try:
        for batch in batches:
            # [start, end], or {"rows": [...]} for rows in another order (a shuffled epoch).
            if isinstance(batch, dict):
                input_ids, start = rows.take(batch["rows"]), min(batch["rows"])
            else:
                start, end = batch
                input_ids = rows.rows(start, end)
            if vocab_size is not None:
                _check_vocab(input_ids, vocab_size, start)
            input_ids = input_ids.to(device)
            tokens += input_ids.numel()
            mask = (~torch.isin(input_ids, exclude)).flatten() if exclude is not None else None
            current[0] = _Batch(totals, mask, {})
            for p in prepared:
                run_pass(model, input_ids, p, current[0])
    finally:
        current[0] = None
    for spec in after or []:
        _add_metrics(totals, spec["key"], (program.get(spec["program"])(**spec["args"]) or {}).get("metrics"))
    metrics, stop = reduce(totals, reduce_metrics, stop)
    # Compute time, for the benchmark's overhead accounting.
    return {"metrics": metrics, "tokens": tokens, "stop": stop, "seconds": time.perf_counter() - started}


@op("hooks.forward")
def forward(model, input_ids, passes: list, keep: list | None = None) -> dict:
    """The passes of hooks.run over one batch of token ids already in the runtime (a prompt,
    a sequence being generated) instead of rows of a dataset; every token is kept (no mask).

    Returns {"metrics": {key: {metric: float}}, "keep": {name: value}} with the entries of the
    batch's context named in `keep` (tensors stay here, as handles).
    """
    totals: dict = {}
    current: list = [None]
    prepared = [_Pass(model, spec, current) for spec in passes]
    try:
        current[0] = _Batch(totals, None, {})
        for p in prepared:
            run_pass(model, input_ids, p, current[0])
        context = current[0].context
    finally:
        current[0] = None
    missing = [k for k in keep or [] if k not in context]
    if missing:
        raise KeyError(f"hooks.forward: no program kept {missing}")
    metrics, _ = reduce(totals, None, False)
    return {"metrics": metrics, "keep": {k: context[k] for k in keep or []}}
