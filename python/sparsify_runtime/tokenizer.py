"""tokenizer.*: Hugging Face tokenizers."""
from __future__ import annotations

import os

from .core import UserError, op


@op("tokenizer.load")
def load(name_or_path: str, revision: str | None = None, token: str | None = None, local_files_only: bool = False):
    """A model's tokenizer; with `local_files_only` (the Hub cannot be reached), from the cache only."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, revision=revision, token=token, local_files_only=local_files_only)
    except OSError as exc:
        if local_files_only and not os.path.isdir(name_or_path):
            raise UserError(f"could not load tokenizer '{name_or_path}': it is not in the Hugging Face cache and the Hub cannot be reached (offline); connect, or give a local path") from exc
        raise UserError(f"could not load tokenizer '{name_or_path}': {str(exc).splitlines()[0]}") from exc


@op("tokenizer.special_ids")
def special_ids(tokenizer) -> list[int]:
    """The ids of the tokenizer's special tokens (BOS, EOS, pad, ...)."""
    return sorted({int(i) for i in tokenizer.all_special_ids})


@op("tokenizer.decode_ids")
def decode_ids(tokenizer, ids: list[int]) -> list[str]:
    """Each id as the text of its token."""
    return [tokenizer.decode([i]) for i in ids]


@op("tokenizer.encode")
def encode(tokenizer, text: str | list[str], device: str = "cpu"):
    batch = tokenizer(text, return_tensors="pt", padding=isinstance(text, list))
    return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device)}
