"""Hugging Face models and tokenizers: load, tokenize, run."""
from __future__ import annotations

import torch

from .ops_core import dtype_of
from .server import UserError, op


def _resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    if dtype in (None, "auto"):
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return dtype_of(dtype)


@op("model.load")
def load_model(
    name_or_path: str,
    kind: str = "causal_lm",
    device: str = "cpu",
    dtype: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    load_in_8bit: bool = False,
):
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
    try:
        model = cls.from_pretrained(
            name_or_path, dtype=_resolve_dtype(dtype, device), revision=revision, token=token, **extra
        )
    except OSError as exc:
        raise UserError(f"could not load model '{name_or_path}': {str(exc).splitlines()[0]}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    if not load_in_8bit:
        model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model


@op("model.config")
def model_config(model) -> dict:
    cfg = model.config
    return {
        "model_type": getattr(cfg, "model_type", None),
        "hidden_size": getattr(cfg, "hidden_size", None),
        "num_hidden_layers": getattr(cfg, "num_hidden_layers", None),
        "vocab_size": getattr(cfg, "vocab_size", None),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "device": str(next(model.parameters()).device),
    }


@op("tokenizer.load")
def load_tokenizer(name_or_path: str, revision: str | None = None, token: str | None = None):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, revision=revision, token=token)
    except OSError as exc:
        raise UserError(f"could not load tokenizer '{name_or_path}': {str(exc).splitlines()[0]}") from exc


@op("tokenizer.encode")
def tokenize(tokenizer, text: str | list[str], device: str = "cpu"):
    batch = tokenizer(text, return_tensors="pt", padding=isinstance(text, list))
    return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device)}


@op("model.hidden_states")
def hidden_states(model, input_ids, attention_mask=None, flatten: bool = True) -> list:
    """All hidden states of one forward pass (embeddings first), each [batch*seq, D] when flattened."""
    with torch.inference_mode():
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    states = list(out.hidden_states)
    return [h.flatten(0, 1).clone() if flatten else h.clone() for h in states]
