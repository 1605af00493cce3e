"""bench.*: the benchmarks' own ops (`npm run bench`, `npm run bench:gpu`), loaded only by
the benchmark driver (SPARSIFY_RUNTIME_EXTENSIONS names this file): the fixture model and
tokens, the parts a benchmark compares a whole with, timed alone in plain torch, the
reference library's coder step, the profiler and CUDA memory. Not part of the runtime; the
test-only ops (testing.py) stay off.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from sparsify_runtime.core import UserError, op

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_ops  # noqa: E402  (beside this file)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@op("bench.versions")
def versions() -> str:
    import transformers

    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, {where}"


@op("bench.make_model")
def make_model(model_dir: str, bin: str, vocab: int, hidden: int, layers: int, heads: int, inter: int, ctx: int, rows: int, low: int) -> None:
    """A GPT-NeoX with random weights (seed 0), and rows x ctx uniform random token ids (seed 0) as uint16."""
    import numpy as np
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=inter, max_position_embeddings=ctx)
    GPTNeoXForCausalLM(cfg).save_pretrained(model_dir)
    np.random.default_rng(0).integers(low, vocab, size=(rows * ctx,), dtype=np.uint16).tofile(bin)


@op("bench.randn")
def randn(n: int, d: int):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0))


@op("bench.reference_coder")
def reference_coder(params: dict, k: int):
    """The reference library's SparseCoder (sparsify on the path) holding these parameters."""
    try:
        from sparsify import SparseCoder, SparseCoderConfig
    except ImportError as exc:
        raise UserError(f"the reference library does not import here ({exc})") from None
    w = params["encoder.weight"]
    coder = SparseCoder(w.shape[1], SparseCoderConfig(num_latents=w.shape[0], k=k), device=w.device, dtype=w.dtype)
    with torch.no_grad():
        for name, p in coder.named_parameters():
            p.copy_(params[name])  # the same names as sae.safetensors
    return coder


@op("bench.reference_step_ms")
def reference_step_ms(coder, x) -> float:
    """One training-style step of the reference's coder, in ms: forward, fvu backward, grads cleared."""
    t0 = time.perf_counter()
    out = coder(x)
    out.fvu.backward()
    out.fvu.item()
    for p in coder.parameters():
        p.grad = None
    return (time.perf_counter() - t0) * 1000


def _capture(model, hookpoints):
    acts = {}
    base = model.base_model
    handles = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: acts.__setitem__(h, (o[0] if isinstance(o, tuple) else o).flatten(0, 1))) for h in hookpoints]
    return acts, handles


@op("bench.eval_parts")
def eval_parts(model, rows, start: int, end: int, batch: int, device: str, hookpoints: list, params: list) -> dict:
    """evaluate()'s parts timed alone: 2H+1 LM forwards per batch and H coder forwards."""
    fwd = coder_t = 0.0
    for b in range(start, end, batch):
        ids = rows.rows(b, b + batch).to(device)
        acts, handles = _capture(model, hookpoints)
        with torch.no_grad():
            t = time.perf_counter()
            model(ids).logits.float().log_softmax(-1)
            fwd += time.perf_counter() - t
        for h in handles:
            h.remove()
        with torch.no_grad():
            for _ in range(2 * len(hookpoints)):
                t = time.perf_counter()
                model(ids).logits.float().log_softmax(-1)
                fwd += time.perf_counter() - t
            for h, p in zip(hookpoints, params):
                t = time.perf_counter()
                pre = torch.relu(F.linear(acts[h] - p["b_dec"], p["encoder.weight"], p["encoder.bias"]))
                v, i = pre.topk(32, sorted=False)
                F.embedding_bag(i, p["W_dec"], mode="sum", per_sample_weights=v) + p["b_dec"]
                coder_t += time.perf_counter() - t
    return {"forward": fwd, "coder": coder_t}


@op("bench.repeat_tokens")
def repeat_tokens(source, num_rows: int, need: int, bin: str) -> None:
    """A dataset's tokens, repeated to `need` tokens, as a uint16 token file."""
    import numpy as np

    t = source.rows(0, num_rows).flatten()
    reps = -(-need // t.numel())
    t.repeat(reps)[:need].numpy().astype(np.uint16).tofile(bin)


@op("bench.explore_parts")
def explore_parts(model, rows, num_rows: int, batch: int, device: str, hookpoints: list, params: list) -> dict:
    """The latent cache's parts timed alone: one base-model forward per batch and each coder's encode."""
    fwd = enc = 0.0
    for b in range(0, num_rows, batch):
        ids = rows.rows(b, min(b + batch, num_rows)).to(device)
        acts, handles = _capture(model, hookpoints)
        with torch.no_grad():
            _sync()
            t = time.perf_counter()
            model.base_model(ids)
            _sync()
            fwd += time.perf_counter() - t
            for h, p in zip(hookpoints, params):
                _sync()
                t = time.perf_counter()
                pre = torch.relu(F.linear(acts[h] - p["b_dec"], p["encoder.weight"], p["encoder.bias"]))
                pre.topk(32, sorted=False)
                _sync()
                enc += time.perf_counter() - t
        for h in handles:
            h.remove()
    return {"forward": fwd, "encode": enc}


@op("bench.synthetic_latent_cache")
def synthetic_latent_cache(d: str, m: int) -> None:
    """A latent cache of random state for an m-latent coder (100 rows of 1024 tokens, a 50k vocabulary)."""
    from safetensors.torch import save_file

    os.makedirs(os.path.join(d, "coders"))
    g = torch.Generator().manual_seed(0)
    rows, ctx, vocab, slots = 100, 1024, 50_000, {"top": 20, "sample": 50}
    save_file({"input_ids": torch.randint(0, vocab, (rows, ctx), generator=g, dtype=torch.int32)}, os.path.join(d, "tokens.safetensors"))
    count = torch.randint(0, 2000, (m,), generator=g)
    st = {
        "tokens": torch.tensor(rows * ctx), "count": count, "act_sum": count.double() * 1.5, "act_max": torch.rand(m, generator=g) * 10,
        "hist": torch.randint(0, 40, (m, 50), generator=g), "hist_range": torch.full((m,), 16.0),
        "logit_top_id": torch.randint(0, vocab, (m, 10), generator=g), "logit_top_value": torch.rand(m, 10, generator=g),
        "logit_bottom_id": torch.randint(0, vocab, (m, 10), generator=g), "logit_bottom_value": -torch.rand(m, 10, generator=g),
        "neighbour_id": torch.randint(0, m, (m, 5), generator=g), "neighbour_similarity": torch.rand(m, 5, generator=g),
    }
    for p, n in slots.items():
        st[p + "_value"] = torch.rand(m, n, generator=g).sort(dim=1, descending=True).values * 10
        st[p + "_token"] = torch.randint(0, rows * ctx, (m, n), generator=g)
        st[p + "_window"] = torch.rand(m, n, 21, generator=g) * (torch.rand(m, n, 21, generator=g) < 0.2)
    st["top_first_token"] = st["top_token"][:, 0].clone()
    save_file(st, os.path.join(d, "coders", "layers.6.safetensors"))
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump([f"tok{i}" for i in range(vocab)], f)
    index = {
        "version": 1, "complete": True, "created": "2026-01-01T00:00:00Z", "model": "synthetic", "dataset": "synthetic", "split": None, "ctx_len": ctx,
        "rows": {"start": 0, "end": rows, "of": rows}, "seed": 0, "max_tokens": rows * ctx,
        "layout": {"top": 20, "reservoir": 50, "before": 16, "after": 4, "bins": 50, "intervals": 10, "perInterval": 5, "logits": 10, "neighbours": 5},
        "vocab_size": vocab, "has_logits": True,
        "coders": {"layers.6": {"hookpoint": "layers.6", "source": None, "hash": "", "file": "coders/layers.6.safetensors", "num_latents": m, "d_in": 768, "k": 32}},
    }
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump(index, f)


_PROFILE: list = []


@op("bench.profile_start")
def profile_start() -> None:
    from torch.profiler import ProfilerActivity, profile

    p = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else []))
    p.__enter__()
    _PROFILE[:] = [p]


@op("bench.profile_stop")
def profile_stop(trace: str | None) -> str | None:
    """Stop the profiler: its table by GPU (else CPU) time, with the host-sync count; a gzip Chrome trace to `trace`."""
    p = _PROFILE.pop()
    p.__exit__(None, None, None)
    if trace:
        tmp = tempfile.mktemp(suffix=".json")
        p.export_chrome_trace(tmp)
        with open(tmp, "rb") as src, gzip.open(trace, "wb") as dst:
            shutil.copyfileobj(src, dst)
    ka = p.key_averages()
    syncs = sum(e.count for e in ka if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize"))
    for key in ("self_device_time_total", "self_cuda_time_total") if torch.cuda.is_available() else ("self_cpu_time_total",):
        try:
            return f"host syncs (cudaStreamSynchronize, cudaDeviceSynchronize): {syncs}\n" + ka.table(sort_by=key, row_limit=35, max_name_column_width=70)
        except Exception:  # noqa: BLE001 - the key's name changed across torch versions
            pass
    return None


@op("bench.time_ops")
def time_ops(model, tokens: int, d: int, m: int, k: int, batch: int, ctx: int, device: str) -> dict:
    return gpu_ops.time_ops(model, tokens, d, m, k, batch, ctx, device)


@op("bench.cuda_reset_peak")
def cuda_reset_peak() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


@op("bench.cuda_peak_gib")
def cuda_peak_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
