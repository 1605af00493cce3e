"""model.*: Hugging Face models: load, describe, find module widths, run."""
from __future__ import annotations

import os

import torch

from .core import UserError, op
from .runtime import apply_progress_bars
from .tensor import dtype_of


def _resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    if dtype in (None, "auto"):
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return dtype_of(dtype)


@op("model.load")
def load(
    name_or_path: str,
    kind: str = "causal_lm",
    device: str = "cpu",
    dtype: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    load_in_8bit: bool = False,
    local_files_only: bool = False,
):
    """Load a model; with `local_files_only` (the Hub cannot be reached), from the cache only."""
    from transformers import AutoModel, AutoModelForCausalLM

    cls = {"causal_lm": AutoModelForCausalLM, "base": AutoModel}.get(kind)
    if cls is None:
        raise UserError(f"unknown model kind '{kind}' (allowed: causal_lm, base)")
    extra = {}
    if load_in_8bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UserError("load_in_8bit needs the bitsandbytes package, which is not installed in this Python (pip install bitsandbytes, on a CUDA machine)") from None
        from transformers import BitsAndBytesConfig

        extra = {"quantization_config": BitsAndBytesConfig(load_in_8bit=True), "device_map": {"": device}}
    from transformers.utils import logging as hf_logging

    # Loading a base model from a causal-LM checkpoint reports the unused LM head as
    # "unexpected" keys: expected here, and noise for users.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    apply_progress_bars("transformers", "huggingface_hub")
    try:
        model, info = cls.from_pretrained(name_or_path, dtype=_resolve_dtype(dtype, device), revision=revision, token=token, output_loading_info=True, local_files_only=local_files_only, **extra)
    except OSError as exc:
        if local_files_only and not os.path.isdir(name_or_path):
            raise UserError(f"could not load model '{name_or_path}': it is not in the Hugging Face cache and the Hub cannot be reached (offline); connect, or give a local path") from exc
        raise UserError(f"could not load model '{name_or_path}': {str(exc).splitlines()[0]}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    # A causal-LM class loaded from a checkpoint without its head makes one up at random:
    # remember whether the head's weights were really there (ce/kl need them).
    head = model.get_output_embeddings() if kind == "causal_lm" else None
    head_names = [n for n, p in model.named_parameters() if head is not None and p is head.weight]
    model._sparsify_lm_head = bool(head_names) and not any(n in info.get("missing_keys", ()) for n in head_names)
    if not load_in_8bit:
        model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model


@op("model.config")
def config(model) -> dict:
    cfg = model.config
    return {
        "model_type": getattr(cfg, "model_type", None),
        "hidden_size": getattr(cfg, "hidden_size", None),
        "num_hidden_layers": getattr(cfg, "num_hidden_layers", None),
        "vocab_size": getattr(cfg, "vocab_size", None),
        "lm_head": bool(getattr(model, "_sparsify_lm_head", False)),
        "special_token_ids": sorted(
            {int(i) for name in ("bos_token_id", "eos_token_id", "pad_token_id") for i in _ids(getattr(cfg, name, None))}
        ),
        # The longest sequence the position embeddings cover (None: no limit the config states).
        "max_positions": next((int(v) for v in (getattr(cfg, n, None) for n in ("max_position_embeddings", "n_positions", "n_ctx")) if isinstance(v, int)), None),
        # Where generation stops: the generation config's EOS ids, else the model config's.
        "eos_token_ids": sorted({int(i) for i in _ids(getattr(getattr(model, "generation_config", None), "eos_token_id", None) or getattr(cfg, "eos_token_id", None))}),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "device": str(next(model.parameters()).device),
    }


def _ids(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


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


def first(x):
    """A module's output, or the first element of a tuple output."""
    return x[0] if isinstance(x, (tuple, list)) else x


def hook_input(args, kwargs):
    """A module's (first) input, whether passed by position or by keyword."""
    if args:
        return first(args)
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
                out = first(output)
                inp = hook_input(args, kwargs)
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


@op("model.output_embeddings")
def output_embeddings(model):
    """The unembedding matrix [vocab, hidden] of a model with a loaded language-model head, else None."""
    if not getattr(model, "_sparsify_lm_head", False):
        return None
    return model.get_output_embeddings().weight.detach()


@op("model.hidden_states")
def hidden_states(model, input_ids, attention_mask=None, flatten: bool = True) -> list:
    """All hidden states of one forward pass (embeddings first), each [batch*seq, D] when flattened."""
    with torch.inference_mode():
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    states = list(out.hidden_states)
    return [h.flatten(0, 1).clone() if flatten else h.clone() for h in states]
