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


@op("tokenizer.decode")
def decode(tokenizer, ids: list[int]) -> str:
    """A sequence of ids as one text (byte-level tokens joined before decoding)."""
    return tokenizer.decode(ids)


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-to-unicode table (every byte as a printable character), inverted: char -> byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _decoder_types(tokenizer) -> set[str]:
    """The kinds of the fast tokenizer's decoder (those of a Sequence too); empty for a slow one."""
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return set()
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    parts = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
    return {d.get("type", "") for d in parts}


@op("tokenizer.token_bytes")
def token_bytes(tokenizer, ids: list[int]) -> list[str | None]:
    """Each id's raw bytes as hex, where the tokenizer says what they are (a byte-level BPE's
    tokens, a byte-fallback `<0xNN>` token); None elsewhere."""
    kinds = _decoder_types(tokenizer)
    alphabet = _byte_level_alphabet() if "ByteLevel" in kinds else None
    out: list[str | None] = []
    for token in tokenizer.convert_ids_to_tokens(ids):
        if token is None:
            out.append(None)
        elif alphabet is not None and all(c in alphabet for c in token):
            out.append(bytes(alphabet[c] for c in token).hex())
        elif "ByteFallback" in kinds and len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            out.append(token[3:5].lower())
        else:
            out.append(None)
    return out


@op("tokenizer.encode")
def encode(tokenizer, text: str | list[str], device: str = "cpu"):
    batch = tokenizer(text, return_tensors="pt", padding=isinstance(text, list))
    return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device)}
