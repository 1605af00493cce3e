"""data.*: datasets: load (Hub name, local path, saved-to-disk, .bin token files), tokenize
into fixed-length rows (the reference's chunk_and_tokenize), shuffle, truncate."""
from __future__ import annotations

import os

import numpy as np
import torch

from . import tokenizer as tokenizers
from .core import UserError, op


class TokenRows:
    """Rows of token ids: a torch tensor [rows, ctx_len] or a uint16 memmap reshaped so."""

    def __init__(self, data, ctx_len: int):
        self.data = data
        self.ctx_len = ctx_len

    def __len__(self):
        return self.data.shape[0]

    def rows(self, start: int, end: int) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.data[start:end], dtype=np.int64))


class HFRows:
    """A Hugging Face Dataset with an input_ids column of equal-length rows."""

    def __init__(self, dataset):
        self.dataset = dataset
        first = dataset[0]["input_ids"] if len(dataset) else []
        self.ctx_len = len(first)

    def __len__(self):
        return len(self.dataset)

    def rows(self, start: int, end: int) -> torch.Tensor:
        ids = self.dataset[start:end]["input_ids"]
        return ids if isinstance(ids, torch.Tensor) else torch.as_tensor(ids, dtype=torch.long)


FILE_BUILDERS = {"json": "json", "jsonl": "json", "csv": "csv", "parquet": "parquet", "txt": "text", "arrow": "arrow"}


def _parse_data_args(data_args: dict | None) -> dict:
    return dict(data_args or {})


def chunk_and_tokenize(data, tokenizer, *, num_proc: int, text_key: str, max_seq_len: int, batch_size: int = 2048):
    """The reference's chunk_and_tokenize: join texts with EOS (starting with one), cut into
    rows of min(max_seq_len, model_max_length) tokens, drop each map batch's last row."""

    if text_key not in data.column_names:
        raise UserError(f"text column '{text_key}' not found in the dataset (columns: {', '.join(data.column_names)}); pass --text_column")

    chunk_size = min(tokenizer.model_max_length, max_seq_len)
    specials = tokenizer.num_special_tokens_to_add()
    body = chunk_size - specials
    if body <= 0:
        raise UserError(f"ctx_len {max_seq_len} leaves no room for tokens next to the tokenizer's {specials} special tokens")

    def _tokenize_fn(x):
        # Same rows as the reference's truncation with return_overflowing_tokens (each chunk
        # gets the tokenizer's special tokens), computed by slicing: some tokenizers
        # releases return only part of the overflow.
        sep = tokenizer.eos_token or "<|endoftext|>"
        joined_text = sep.join([""] + x[text_key])
        ids = tokenizer(joined_text, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]
        chunks = [ids[i : i + body] for i in range(0, len(ids), body)]
        rows = [tokenizer.build_inputs_with_special_tokens(c) if specials else c for c in chunks]
        output = {"input_ids": rows[:-1]}
        if len(output["input_ids"]) == 0:
            raise UserError(f"not enough text for one complete row of {chunk_size} tokens; supply more data or a smaller --ctx_len")
        return output

    return data.map(
        _tokenize_fn,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        remove_columns=data.column_names,
    )


@op("data.load")
def load(
    name_or_path: str,
    split: str = "train",
    data_args: dict | None = None,
    tokenizer=None,
    ctx_len: int = 2048,
    text_column: str = "text",
    num_proc: int = 1,
    shuffle_seed: int = 42,
    max_examples: int | None = None,
):
    """Load and prepare a dataset; returns the rows object (a handle) and its size."""
    if name_or_path.endswith(".bin"):
        if not os.path.exists(name_or_path):
            raise UserError(f"{name_or_path}: token file not found")
        mm = np.memmap(name_or_path, dtype=np.uint16, mode="r")
        n = len(mm) // ctx_len
        if n == 0:
            raise UserError(f"{name_or_path}: holds {len(mm)} tokens, fewer than one row of ctx_len={ctx_len}")
        rows = mm[: n * ctx_len].reshape(n, ctx_len)
        if max_examples:
            rows = rows[:max_examples]
        return {"rows": TokenRows(rows, ctx_len), "num_rows": int(rows.shape[0]), "ctx_len": ctx_len}

    import datasets

    if os.path.isdir(name_or_path) and (
        os.path.exists(os.path.join(name_or_path, "dataset_info.json")) or os.path.exists(os.path.join(name_or_path, "dataset_dict.json"))
    ):
        data = datasets.load_from_disk(name_or_path)
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise UserError(f"{name_or_path}: no split '{split}' (splits: {', '.join(data)})")
            data = data[split]
    elif os.path.isfile(name_or_path) and name_or_path.rsplit(".", 1)[-1] in FILE_BUILDERS:
        # A single data file: load_dataset needs the builder named for it.
        builder = FILE_BUILDERS[name_or_path.rsplit(".", 1)[-1]]
        data = datasets.load_dataset(builder, data_files=name_or_path, split="train", **_parse_data_args(data_args))
    else:
        try:
            data = datasets.load_dataset(name_or_path, split=split, **_parse_data_args(data_args))
        except ValueError as exc:
            if "load_from_disk" in str(exc):
                data = datasets.Dataset.load_from_disk(name_or_path)
            else:
                raise UserError(f"could not load dataset '{name_or_path}': {str(exc).splitlines()[0]}") from exc
        except FileNotFoundError as exc:
            raise UserError(f"could not load dataset '{name_or_path}': {str(exc).splitlines()[0]}") from exc
        except Exception as exc:  # noqa: BLE001 - connection errors and the like
            if type(exc).__name__ in ("DatasetNotFoundError", "ConnectionError", "OfflineModeIsEnabled", "HfHubHTTPError"):
                raise UserError(f"could not load dataset '{name_or_path}': {str(exc).splitlines()[0]}") from exc
            raise
    if "input_ids" not in data.column_names:
        if tokenizer is None:
            raise UserError("the dataset is not tokenized (no input_ids column) and no tokenizer was given")
        if isinstance(tokenizer, dict):
            # Where to load it from: loaded only now, when the text needs it.
            tokenizer = tokenizers.load(**tokenizer)
        data = chunk_and_tokenize(data, tokenizer, num_proc=num_proc, text_key=text_column, max_seq_len=ctx_len)
    data = data.shuffle(seed=shuffle_seed)
    data = data.with_format("torch", columns=["input_ids"])
    if max_examples:
        data = data.select(range(min(max_examples, len(data))))
    if len(data) == 0:
        raise UserError(f"dataset '{name_or_path}' has no rows after preparation")
    rows = HFRows(data)
    return {"rows": rows, "num_rows": len(rows), "ctx_len": rows.ctx_len}
