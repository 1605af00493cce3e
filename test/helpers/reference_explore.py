"""The latent cache restated in plain PyTorch: every activation of the pass kept densely,
then each latent's statistics, top examples, histogram, logit effects and neighbours read
off with plain sorts, to check the TS-authored streaming programs."""
import math

import torch
import torch.nn.functional as F

BEFORE, AFTER, TOP, BINS, LOGITS, NEIGHBOURS = 16, 4, 20, 50, 10, 5


def _first(o):
    return o[0] if isinstance(o, tuple) else o


def encode(p, x, k, activation, transcode):
    """Selected (activations, indices): the encoder's formula, densely."""
    pre = F.relu(F.linear(x if transcode else x - p["b_dec"], p["encoder.weight"], p["encoder.bias"]))
    if activation == "topk":
        return pre.topk(k, dim=-1, sorted=False)
    m = pre.shape[-1]
    acts, pos = pre.unflatten(-1, (k, m // k)).max(dim=-1)
    return acts, pos + torch.arange(0, m, m // k)


def dense_activations(model, rows, coders, *, batch_size, exclude):
    """{name: [tokens, latents]} of every token's selected activations (0 where excluded),
    encoded in the same batches as the cache pass (so the float results are the same)."""
    base = model.base_model
    exclude = torch.tensor(sorted(exclude), dtype=torch.long)
    out = {n: [] for n in coders}
    for b in range(0, len(rows), batch_size):
        ids = rows[b : b + batch_size]
        keep = ~torch.isin(ids, exclude).flatten()
        seen = {}
        handles = [base.get_submodule(hp).register_forward_hook(lambda m, a, o, hp=hp: seen.__setitem__(hp, (a[0], _first(o)))) for hp in {c[0] for c in coders.values()}]
        try:
            with torch.no_grad():
                base(ids)
        finally:
            for h in handles:
                h.remove()
        for name, (hp, p, k, act, tc) in coders.items():
            inp, o = seen[hp]
            x = (inp if tc else o).flatten(0, 1)
            with torch.no_grad():
                acts, idx = encode(p, x, k, act, tc)
            dense = torch.zeros(x.shape[0], p["encoder.weight"].shape[0]).scatter(1, idx, acts.float())
            out[name].append(dense * keep[:, None])
    return {n: torch.cat(v) for n, v in out.items()}


def latent_stats(dense, ctx_len, token_base):
    """Per latent: count, sum, max, histogram (range, counts) and the top examples by
    (activation desc, token asc) with their windows."""
    fired = dense > 0
    count = fired.sum(0)
    mx = dense.max(0).values
    result = {"count": count.tolist(), "sum": dense.double().sum(0).tolist(), "max": mx.tolist(), "hist_range": [], "hist": [], "top": []}
    n = dense.shape[0]
    for l in range(dense.shape[1]):
        col = dense[:, l]
        r = 2.0 ** math.ceil(math.log2(float(mx[l]))) if mx[l] > 0 else 0.0
        hist = [0] * BINS
        for a in col[col > 0].tolist():
            hist[min(BINS - 1, max(0, math.floor(torch.tensor(a * BINS, dtype=torch.float32).item() / r)))] += 1
        result["hist_range"].append(r)
        result["hist"].append(hist)
        # torch.sort is stable: equal activations stay in token order.
        order = torch.sort(col, descending=True, stable=True).indices
        top = []
        for t in order[: int(min(TOP, int(count[l])))].tolist():
            row_start = t - t % ctx_len
            window = [float(col[p]) if row_start <= p < row_start + ctx_len and 0 <= p < n else 0.0 for p in range(t - BEFORE, t + AFTER + 1)]
            top.append({"token": t + token_base, "activation": float(col[t]), "window": window})
        result["top"].append(top)
    return result


def logit_effects(w_dec, w_u):
    effects = w_dec.float() @ w_u.float().T
    top = effects.topk(LOGITS, dim=-1)
    bottom = (-effects).topk(LOGITS, dim=-1)
    return {"top_id": top.indices.tolist(), "top_value": top.values.tolist(), "bottom_id": bottom.indices.tolist(), "bottom_value": (-bottom.values).tolist()}


def neighbours(w_dec):
    unit = F.normalize(w_dec.float(), dim=-1)
    cos = unit @ unit.T
    cos.fill_diagonal_(-float("inf"))
    near = cos.topk(NEIGHBOURS, dim=-1)
    return {"id": near.indices.tolist(), "similarity": near.values.tolist()}
