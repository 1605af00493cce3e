"""Plain-torch reference formulas for the tests: the naive versions of the reference's sparsify/sparse_coder.py (SparseCoder.encode, decode, forward) and its initialisation."""
import torch
import torch.nn.functional as F


def reference_init(d_in, num_latents, seed, transcode=False, normalize=True, skip=False):
    """The reference library's SparseCoder.__init__, op for op."""
    torch.manual_seed(seed)
    encoder = torch.nn.Linear(d_in, num_latents)
    encoder.bias.data.zero_()
    W_dec = torch.zeros_like(encoder.weight.data) if transcode else encoder.weight.data.clone()
    if normalize:
        eps = torch.finfo(W_dec.dtype).eps
        norm = torch.norm(W_dec, dim=1, keepdim=True)
        W_dec /= norm + eps
    out = {"encoder.weight": encoder.weight.data, "encoder.bias": encoder.bias.data, "W_dec": W_dec, "b_dec": torch.zeros(d_in)}
    if skip:
        out["W_skip"] = torch.zeros(d_in, d_in)
    return out


def leaf_copy(params):
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def naive_pre(params, x, transcode):
    sae_in = x if transcode else x - params["b_dec"]
    return F.relu(sae_in @ params["encoder.weight"].T + params["encoder.bias"])


def naive_select(pre, k, activation):
    if activation == "topk":
        return pre.topk(k, dim=-1, sorted=False)
    m = pre.shape[-1]
    vals, pos = pre.unflatten(-1, (k, m // k)).max(dim=-1)
    return vals, pos + torch.arange(0, m, m // k)


def dense_decode(params, acts, idx):
    n, m = acts.shape[0], params["W_dec"].shape[0]
    dense = torch.zeros(n, m, dtype=acts.dtype).scatter(1, idx, acts)
    return dense @ params["W_dec"] + params["b_dec"]


def naive_forward(params, x, y, dead_mask, k, activation, transcode, skip, multi_topk):
    """The reference's forward. Its fused encoder passes no gradient through pre_acts, so
    the AuxK and Multi-TopK paths see them detached (they train only the decoder)."""
    pre = naive_pre(params, x, transcode)
    pre_nograd = pre.detach()
    acts, idx = naive_select(pre, k, activation)
    out = dense_decode(params, acts, idx)
    if skip:
        out = out + x @ params["W_skip"].T
    y = x if y is None else y
    e = y - out
    tv = ((y - y.mean(0)) ** 2).sum()
    fvu = (e ** 2).sum() / tv
    auxk = torch.tensor(0.0)
    if dead_mask is not None and int(dead_mask.sum()) > 0:
        num_dead = int(dead_mask.sum())
        k_aux = y.shape[-1] // 2
        scale = min(num_dead / k_aux, 1.0)
        k_aux = min(k_aux, num_dead)
        masked = torch.where(dead_mask[None], pre_nograd, -torch.inf)
        a, i = masked.topk(k_aux, sorted=False)
        e_hat = dense_decode(params, a, i)
        auxk = scale * ((e_hat - e.detach()) ** 2).sum() / tv
    mtk = torch.tensor(0.0)
    if multi_topk:
        # The reference reassigns sae_out and the selection here, so its output reports the
        # top-4k reconstruction and latents.
        acts, idx = pre_nograd.topk(4 * k, sorted=False)
        out = dense_decode(params, acts, idx)
        mtk = ((out - y) ** 2).sum() / tv
    return {"sae_out": out, "acts": acts, "idx": idx, "fvu": fvu, "auxk": auxk, "mtk": mtk}
