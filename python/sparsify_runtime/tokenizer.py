"""tokenizer.*: Hugging Face tokenizers."""
from __future__ import annotations

from .core import UserError, op


@op("tokenizer.load")
def load(name_or_path: str, revision: str | None = None, token: str | None = None):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, revision=revision, token=token)
    except OSError as exc:
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
