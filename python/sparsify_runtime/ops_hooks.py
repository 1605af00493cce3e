"""Forward hooks by module name that call compiled programs, and the batch runner.

This is generic machinery: which modules, which programs and with what arguments all come
from the TypeScript side. A hook program gets (inputs, outputs, mask, **args) for its
module and returns {"metrics": {...}} and, when it replaces the module's output,
{"output": tensor}.
"""
from __future__ import annotations

import contextlib
import time

import torch

from .ops_core import PROGRAMS
from .ops_dist import all_gather_cat, merge_metrics
from .server import UserError, op


@op("model.modules")
def modules(model) -> list[dict]:
    """Every submodule of the base model: name, class, and length for ModuleLists."""
    out = []
    for name, mod in model.base_model.named_modules():
        if not name:
            continue
        entry = {"name": name, "type": type(mod).__name__}
        if isinstance(mod, torch.nn.ModuleList):
            entry["length"] = len(mod)
        out.append(entry)
    return out


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def _hook_input(args, kwargs):
    if args:
        return _first(args)
    for v in kwargs.values():
        if isinstance(v, torch.Tensor):
            return v
    return None


@op("model.hook_widths")
def hook_widths(model, names: list[str]) -> dict:
    """Output and input widths of the named modules, from one dummy forward pass."""
    base = model.base_model
    widths: dict[str, dict] = {}
    handles = []
    try:
        for name in names:
            mod = base.get_submodule(name)

            def hook(module, args, kwargs, output, name=name):
                out = _first(output)
                inp = _hook_input(args, kwargs)
                widths[name] = {
                    "output": int(out.shape[-1]),
                    "input": int(inp.shape[-1]) if isinstance(inp, torch.Tensor) and inp.is_floating_point() else None,
                }

            handles.append(mod.register_forward_hook(hook, with_kwargs=True))
        device = next(model.parameters()).device
        dummy = {k: v.to(device) for k, v in model.dummy_inputs.items()}
        with torch.no_grad():
            model(**dummy)
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in names if n not in widths]
    if missing:
        raise UserError(f"modules {', '.join(missing)} did not run in a forward pass, so their widths are unknown")
    return widths


def _add_metrics(total: dict, key: str, metrics: dict | None) -> None:
    if not metrics:
        return
    slot = total.setdefault(key, {})
    for k, v in metrics.items():
        v = v.detach() if isinstance(v, torch.Tensor) else v
        slot[k] = slot[k] + v if k in slot else v


def _to_floats(totals: dict) -> dict:
    """Metric tensors to Python floats with one device sync (not one per metric)."""
    places, tensors = [], []
    result: dict = {}
    for k, d in totals.items():
        result[k] = {}
        for m, v in d.items():
            if isinstance(v, torch.Tensor):
                places.append((k, m))
                tensors.append(v.detach().float().reshape(()))
            else:
                result[k][m] = v
    if tensors:
        for (k, m), value in zip(places, torch.stack(tensors).tolist()):
            result[k][m] = value
    return result


@contextlib.contextmanager
def _identity(modules):
    """Temporarily make modules return their (first) input: transcoders replace them."""
    saved = []
    try:
        for mod in modules:
            saved.append((mod, mod.forward))
            mod.forward = lambda *args, **kwargs: _hook_input(args, kwargs)
        yield
    finally:
        for mod, fwd in saved:
            mod.forward = fwd


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
    before: list | None = None,
    reduce_metrics: str | None = None,
    stop: bool = False,
):
    """Run the model on each batch of rows with program hooks, then the `after` programs.

    batches: [[start, end], ...] rows of `rows` (several for gradient accumulation).
    hooks: [{"key", "module", "program", "args", "replace"?, "identity"?}]; hooks on the same
      module run in order; `key` names their metrics.
    loss: None (the model runs under no_grad; hooks backprop their own losses) or
      {"program", "args", "clean": bool}: the model runs with grad and the loss program gets
      (logits, input_ids, clean_logits?) and backpropagates.
    before/after: [{"key", "program", "args"}] run once before the first / after the last batch.
    Distributed: a hook with "gather": true sees inputs, outputs and mask concatenated from
    every rank (every rank must list the module; "program": None only takes part in the
    gather). reduce_metrics "mean" averages the metric sums over ranks, "merge" collects
    each key from the rank that has it.
    Returns {key: {metric: float}} summed over batches, plus "tokens" and "seconds".
    """
    started = time.perf_counter()
    base = model.base_model
    by_module: dict[str, list] = {}
    for h in hooks:
        by_module.setdefault(h["module"], []).append(h)
    totals: dict = {}
    for spec in before or []:
        out = PROGRAMS[spec["program"]](**spec["args"])
        _add_metrics(totals, spec["key"], (out or {}).get("metrics"))
    exclude = torch.tensor(exclude_tokens, device=device) if exclude_tokens else None
    tokens = 0
    state = {"mask": None}

    def make_hook(specs):
        gather = any(s.get("gather") for s in specs)

        def hook(module, args, kwargs, output):
            inputs = _hook_input(args, kwargs)
            outputs = _first(output)
            mask = state["mask"]
            if gather:
                inputs, outputs, mask = all_gather_cat(inputs), all_gather_cat(outputs), all_gather_cat(mask)
            replacement = None
            for spec in specs:
                if spec.get("program") is None:
                    continue
                res = PROGRAMS[spec["program"]](inputs=inputs, outputs=outputs, mask=mask, **spec["args"])
                _add_metrics(totals, spec["key"], res.get("metrics"))
                if spec.get("replace"):
                    replacement = res["output"]
            if replacement is None:
                return None
            if isinstance(output, tuple):
                return (replacement, *output[1:])
            return replacement

        return hook

    handles = []
    identity_modules = []
    try:
        for name, specs in by_module.items():
            try:
                mod = base.get_submodule(name)
            except AttributeError:
                raise UserError(f"module '{name}' not found in the model") from None
            if any(s.get("identity") for s in specs):
                identity_modules.append(mod)
            handles.append((mod, make_hook(specs)))
        for start, end in batches:
            input_ids = rows.rows(start, end).to(device)
            tokens += input_ids.numel()
            state["mask"] = (~torch.isin(input_ids, exclude)).flatten() if exclude is not None else None
            clean_logits = None
            if loss and loss.get("clean"):
                with torch.no_grad():
                    clean_logits = model(input_ids).logits
            registered = [mod.register_forward_hook(h, with_kwargs=True) for mod, h in handles]
            try:
                with _identity(identity_modules):
                    if loss:
                        with torch.enable_grad():
                            logits = model(input_ids).logits
                            res = PROGRAMS[loss["program"]](logits=logits, input_ids=input_ids, clean_logits=clean_logits, **loss["args"])
                        _add_metrics(totals, loss.get("key", "loss"), res.get("metrics"))
                    else:
                        with torch.no_grad():
                            model(input_ids)
            finally:
                for r in registered:
                    r.remove()
        for spec in after or []:
            out = PROGRAMS[spec["program"]](**spec["args"])
            _add_metrics(totals, spec["key"], (out or {}).get("metrics"))
    finally:
        state["mask"] = None
    result = _to_floats(totals)
    if reduce_metrics:
        # The stop flag rides along, so every rank stops after the same step.
        result["__stop__"] = {"stop": 1.0 if stop else 0.0}
        result = merge_metrics(result, reduce_metrics)
        stop = result.pop("__stop__", {}).get("stop", 0.0) > 0
    result["stop"] = bool(stop)
    result["tokens"] = tokens
    result["seconds"] = time.perf_counter() - started  # compute time, for overhead accounting
    return result
