"""Per-op timings of one coder step at the GPU bench's shapes, each in plain torch and timed
with CUDA events (median of repeats after warm-up), for `npm run bench:gpu`: where a step's
time goes (encoder GEMM, top-k, decoder forward, backward, optimizer, LM forward).
"""
import time

import torch
import torch.nn.functional as F


def _timer(cuda: bool):
    def time_ms(fn, repeats: int = 10) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(repeats):
            if cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                torch.cuda.synchronize()
                times.append(a.elapsed_time(b))
            else:
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1000)
        return sorted(times)[len(times) // 2]

    return time_ms


def time_ops(model, tokens: int, d: int, m: int, k: int, batch: int, ctx: int, device: str) -> dict:
    cuda = device.startswith("cuda")
    time_ms = _timer(cuda)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(tokens, d, device=device, generator=g)
    w = (torch.randn(m, d, device=device, generator=g) / d**0.5).requires_grad_()
    b = torch.zeros(m, device=device, requires_grad=True)
    w_dec = w.detach().clone().requires_grad_()
    b_dec = torch.zeros(d, device=device, requires_grad=True)
    out = {}
    # bf16 on CUDA, as the coders' forward runs under autocast.
    lowp = torch.bfloat16 if cuda else torch.float32
    xl, wl, bl = x.to(lowp), w.detach().to(lowp), b.detach().to(lowp)
    with torch.no_grad():
        out["encoder_gemm"] = time_ms(lambda: F.relu(F.linear(xl, wl, bl)))
        pre = F.relu(F.linear(xl, wl, bl))
        out["topk"] = time_ms(lambda: pre.topk(k, sorted=False))
        vals, idx = pre.topk(k, sorted=False)
        out["decoder_forward"] = time_ms(lambda: F.embedding_bag(idx, w_dec, mode="sum", per_sample_weights=vals.float()) + b_dec)

    def forward_backward():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            pre = F.relu(F.linear(x - b_dec, w, b))
        v, i = pre.topk(k, sorted=False)
        y = F.embedding_bag(i, w_dec, mode="sum", per_sample_weights=v.float()) + b_dec
        ((y - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).backward()

    full = time_ms(forward_backward)
    out["backward_plain_autograd"] = max(0.0, full - out["encoder_gemm"] - out["topk"] - out["decoder_forward"])

    # The weight-gradient kernels alone, as --sparse_backward index_add and gemm compute them
    # (bf16 gradients, as under autocast).
    gv = torch.randn(tokens, k, device=device, generator=g).to(lowp)
    dy = torch.randn(tokens, d, device=device, generator=g)

    def enc_grad_index_add():
        gw = torch.zeros_like(w)
        gw.index_add_(0, idx.flatten(), (gv.unsqueeze(2) * x.unsqueeze(1)).reshape(-1, d).type_as(w))

    def enc_grad_gemm():
        dense = gv.new_zeros(tokens, m).scatter_(1, idx, gv)
        (dense.mT @ x.to(lowp)).float()

    acts = vals.detach().float().requires_grad_()
    table = w_dec.detach().clone().requires_grad_()

    def dec_backward_embedding_bag():
        F.embedding_bag(idx, table, mode="sum", per_sample_weights=acts).backward(dy)

    def dec_backward_gemm():
        a = acts.detach().to(lowp)
        (dy.to(lowp) @ table.detach().to(lowp).mT).gather(1, idx)
        dense = a.new_zeros(tokens, m).scatter_(1, idx, a)
        (dense.mT @ dy.to(lowp)).float()

    # Candidates: the bias and relu in the product's epilogue; the decoder's rows gathered in
    # bf16; top-k in two stages (the top k of each of G chunks of a row, then of those G*k).
    out["encoder_addmm_relu"] = time_ms(lambda: torch._addmm_activation(bl, xl, wl.t()))
    out["decoder_forward_lowp"] = time_ms(lambda: F.embedding_bag(idx, w_dec.detach().to(lowp), mode="sum", per_sample_weights=vals.to(lowp)).float())

    def chunked_topk(groups: int):
        def run():
            v, i = pre.view(tokens, groups, m // groups).topk(k, dim=-1, sorted=False)
            v2, j = v.flatten(1).topk(k, sorted=False)
            (i + torch.arange(0, m, m // groups, device=device).view(1, groups, 1)).flatten(1).gather(1, j)

        return run

    for groups in (2, 4, 8, 16, 32, 64, 128, 192):
        if m % groups == 0 and m // groups >= k:
            out[f"topk_chunks{groups}"] = time_ms(chunked_topk(groups))
    out["topk_fp32"] = time_ms(lambda: pre.float().topk(k, sorted=False))
    out["encoder_weight_grad_index_add"] = time_ms(enc_grad_index_add)
    out["encoder_weight_grad_gemm"] = time_ms(enc_grad_gemm)
    out["decoder_backward_embedding_bag"] = time_ms(dec_backward_embedding_bag)
    out["decoder_backward_gemm"] = time_ms(dec_backward_gemm)
    params = [w, b, w_dec, b_dec]
    for p in params:
        p.grad = torch.randn_like(p)
    zs = [p.detach().clone() for p in params]

    def signum_schedule_free():
        with torch.no_grad():
            for p, z in zip(params, zs):
                p.lerp_(z, 0.1)
                z.add_(p.grad.sign(), alpha=-1e-3)
                p.lerp_(z, 0.9)

    out["optimizer"] = time_ms(signum_schedule_free)
    ids = torch.randint(0, model.config.vocab_size, (batch, ctx), device=device, generator=g)
    with torch.no_grad():
        out["lm_forward"] = time_ms(lambda: model.base_model(ids), repeats=5)
    return out
