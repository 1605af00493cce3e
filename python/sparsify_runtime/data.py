"""data.*: datasets: load (Hub name, local path, saved-to-disk, .bin token files), tokenize
into fixed-length rows (the reference's chunk_and_tokenize), shuffle, truncate."""
from __future__ import annotations

import os

import numpy as np
import torch

from . import tokenizer as tokenizers
from .core import UserError, op
from .runtime import apply_progress_bars


class TokenRows:
    """Rows of token ids: a torch tensor [rows, ctx_len] or a uint16 memmap reshaped so."""

    def __init__(self, data, ctx_len: int):
        self.data = data
        self.ctx_len = ctx_len

    def __len__(self):
        return self.data.shape[0]

    def rows(self, start: int, end: int) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.data[start:end], dtype=np.int64))

    def take(self, indices) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.data[np.asarray(indices, dtype=np.int64)], dtype=np.int64))


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

    def take(self, indices) -> torch.Tensor:
        ids = self.dataset[[int(i) for i in indices]]["input_ids"]
        return ids if isinstance(ids, torch.Tensor) else torch.as_tensor(ids, dtype=torch.long)


FILE_BUILDERS = {"json": "json", "jsonl": "json", "csv": "csv", "parquet": "parquet", "txt": "text", "arrow": "arrow"}


def _parse_data_args(data_args: dict | None) -> dict:
    return dict(data_args or {})


def chunk_and_tokenize(data, tokenizer, *, num_proc: int, text_key: str, max_seq_len: int, batch_size: int = 2048, source: str = "the dataset"):
    """The reference's chunk_and_tokenize: join texts with EOS (starting with one), cut into
    rows of min(max_seq_len, model_max_length) tokens, drop each map batch's last row."""

    if text_key not in data.column_names:
        raise UserError(f"{source}: text column '{text_key}' not found (columns: {', '.join(data.column_names)}); pass --text_column")
    feature = data.features.get(text_key)
    dtype = getattr(feature, "dtype", None)
    if dtype not in ("string", "large_string"):
        kind = dtype or type(feature).__name__
        raise UserError(f"{source}: column '{text_key}' holds {kind} values, not text; pass --text_column naming a text column (columns: {', '.join(data.column_names)})")

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
    split: str,
    data_args: dict | None,
    tokenizer,
    ctx_len: int,
    text_column: str,
    num_proc: int,
    shuffle_seed: int,
    max_examples: int | None,
    vocab_size: int | None,
    offline: bool,
):
    """Load and prepare a dataset; returns the rows object (a handle) and its size. With
    `vocab_size`, token ids of a token file are checked against it. Every argument comes
    from TypeScript, whose config owns the defaults (src/config/data.ts). `offline` (the Hub
    cannot be reached): a Hub dataset comes from the local cache only."""
    if name_or_path.endswith(".bin"):
        return _load_bin(name_or_path, ctx_len, max_examples, vocab_size)

    import datasets

    apply_progress_bars("datasets", "huggingface_hub")
    if os.path.isdir(name_or_path) and (
        os.path.exists(os.path.join(name_or_path, "dataset_info.json")) or os.path.exists(os.path.join(name_or_path, "dataset_dict.json"))
    ):
        data = datasets.load_from_disk(name_or_path)
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise UserError(f"{name_or_path}: no split '{split}' (splits: {', '.join(data)})")
            data = data[split]
    elif os.path.isfile(name_or_path) and name_or_path.rsplit(".", 1)[-1] in FILE_BUILDERS:
        data = _load_file(name_or_path, split, data_args)
    else:
        was_offline = datasets.config.HF_HUB_OFFLINE
        datasets.config.HF_HUB_OFFLINE = was_offline or offline
        try:
            data = datasets.load_dataset(name_or_path, split=split, **_parse_data_args(data_args))
        except ValueError as exc:
            if "load_from_disk" in str(exc):
                data = datasets.Dataset.load_from_disk(name_or_path)
            elif "Unknown split" in str(exc) or "Bad split" in str(exc):
                raise UserError(f"{name_or_path}: no split '{split}' ({str(exc).splitlines()[0]})") from exc
            else:
                raise UserError(f"could not load dataset '{name_or_path}': {str(exc).splitlines()[0]}") from exc
        except FileNotFoundError as exc:
            raise UserError(f"could not load dataset '{name_or_path}': {str(exc).splitlines()[0]}") from exc
        except Exception as exc:  # noqa: BLE001 - connection errors and the like
            if offline and type(exc).__name__ in ("DatasetNotFoundError", "ConnectionError", "OfflineModeIsEnabled", "HfHubHTTPError"):
                raise UserError(f"could not load dataset '{name_or_path}': it is not in the Hugging Face cache and the Hub cannot be reached (offline); connect, or give a local path") from exc
            if type(exc).__name__ in ("DatasetNotFoundError", "ConnectionError", "OfflineModeIsEnabled", "HfHubHTTPError"):
                raise UserError(f"could not load dataset '{name_or_path}': {str(exc).splitlines()[0]}") from exc
            raise
        finally:
            datasets.config.HF_HUB_OFFLINE = was_offline
    if "input_ids" not in data.column_names:
        if tokenizer is None:
            raise UserError("the dataset is not tokenized (no input_ids column) and no tokenizer was given")
        if isinstance(tokenizer, dict):
            # Where to load it from: loaded only now, when the text needs it.
            tokenizer = tokenizers.load(**tokenizer)
        data = chunk_and_tokenize(data, tokenizer, num_proc=num_proc, text_key=text_column, max_seq_len=ctx_len, source=name_or_path)
    data = data.shuffle(seed=shuffle_seed)
    data = data.with_format("torch", columns=["input_ids"])
    if max_examples:
        data = data.select(range(min(max_examples, len(data))))
    if len(data) == 0:
        raise UserError(f"dataset '{name_or_path}' has no rows after preparation")
    rows = HFRows(data)
    return {"rows": rows, "num_rows": len(rows), "ctx_len": rows.ctx_len}


def _load_bin(path: str, ctx_len: int, max_examples: int | None, vocab_size: int | None) -> dict:
    """A flat uint16 token file, reshaped to rows of ctx_len (memory-mapped)."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file or directory")
    size = os.path.getsize(path)
    if size % 2:
        raise UserError(f"{path}: {size} bytes, not a whole number of uint16 tokens (2 bytes each); is it a token file?")
    mm = np.memmap(path, dtype=np.uint16, mode="r") if size else np.zeros(0, dtype=np.uint16)
    n = len(mm) // ctx_len
    if n == 0:
        raise UserError(f"{path}: holds {len(mm)} tokens, fewer than one row of ctx_len={ctx_len}")
    rows = mm[: n * ctx_len].reshape(n, ctx_len)
    if max_examples:
        rows = rows[:max_examples]
    if vocab_size is not None:
        # In chunks, so a large file is never read into memory at once.
        step = max(1, (1 << 24) // ctx_len)
        for start in range(0, rows.shape[0], step):
            block = np.asarray(rows[start : start + step])
            if block.size and int(block.max()) >= vocab_size:
                r, c = np.argwhere(block >= vocab_size)[0]
                raise UserError(
                    f"{path}: token id {int(block[r, c])} at row {start + int(r)}, position {int(c)} is not in the model's vocabulary "
                    f"of {vocab_size} tokens; was the file made with another tokenizer?"
                )
    return {"rows": TokenRows(rows, ctx_len), "num_rows": int(rows.shape[0]), "ctx_len": ctx_len}


def _load_file(path: str, split: str, data_args: dict | None):
    """A single local data file, which load_dataset reads as the one split 'train'."""
    import datasets

    if split != "train":
        raise UserError(f"{path} is a single data file: its only split is 'train' (got --split {split})")
    if os.path.getsize(path) == 0 or not open(path, "rb").read(1 << 16).strip():
        raise UserError(f"{path}: the file is empty")
    builder = FILE_BUILDERS[path.rsplit(".", 1)[-1]]
    try:
        data = datasets.load_dataset(builder, data_files=path, split="train", **_parse_data_args(data_args))
    except Exception as exc:  # noqa: BLE001 - say which line of which file, not datasets' wrapper
        if "corresponds to no data" in str(exc):
            raise UserError(f"{path}: no rows") from exc
        raise _file_error(path, builder, exc) from exc
    if len(data) == 0:
        raise UserError(f"{path}: no rows")
    return data


def _root_message(exc: BaseException) -> str:
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _file_error(path: str, builder: str, exc: BaseException) -> UserError:
    """Why a data file could not be read: the first bad line of a JSON-lines file, else the cause."""
    import json

    if builder == "json":
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(1).strip()
        if head != "[":
            with open(path, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError as e:
                        return UserError(f"{path} line {number}: not valid JSON ({e.msg} at column {e.colno})")
                    if not isinstance(value, dict):
                        return UserError(f"{path} line {number}: expected a JSON object per line, got {type(value).__name__}")
    kind = {"json": "JSON", "csv": "CSV", "parquet": "Parquet", "text": "text", "arrow": "Arrow"}[builder]
    return UserError(f"{path}: could not read it as {kind}: {_root_message(exc)}")


@op("data.rows")
def rows(rows, start: int, end: int) -> torch.Tensor:
    """Rows [start, end) of a loaded dataset as an int32 tensor (on the CPU)."""
    return rows.rows(start, end).to(torch.int32)
