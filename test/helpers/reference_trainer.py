"""The reference library's training loop (fvu loss), restated in plain PyTorch for
side-by-side checks: its SparseCoder init and forward, the fused encoder, SignSGD inside
the schedule-free wrapper (with its swaps), torch Adam with the linear warmup schedule."""
import math
import pathlib
import sys

import torch
import torch.nn.functional as F

# The reference's fused encoder, as the kernel benchmark restates it (one copy).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python" / "bench"))
from reference_sae import FusedEncoder  # noqa: E402


class Sae(torch.nn.Module):
    def __init__(self, d_in, num_latents, k):
        super().__init__()
        self.k = k
        self.encoder = torch.nn.Linear(d_in, num_latents)
        self.encoder.bias.data.zero_()
        self.W_dec = torch.nn.Parameter(self.encoder.weight.data.clone())
        self.set_decoder_norm_to_unit_norm()
        self.b_dec = torch.nn.Parameter(torch.zeros(d_in))

    @torch.no_grad()
    def set_decoder_norm_to_unit_norm(self):
        eps = torch.finfo(self.W_dec.dtype).eps
        norm = torch.norm(self.W_dec.data, dim=1, keepdim=True)
        self.W_dec.data /= norm + eps

    @torch.no_grad()
    def remove_gradient_parallel_to_decoder_directions(self):
        parallel = torch.einsum("ij,ij->i", self.W_dec.grad, self.W_dec.data)
        self.W_dec.grad -= torch.einsum("i,ij->ij", parallel, self.W_dec.data)

    def forward(self, x):
        acts, idx, pre = FusedEncoder.apply(x - self.b_dec, self.encoder.weight, self.encoder.bias, self.k)
        out = F.embedding_bag(idx, self.W_dec, mode="sum", per_sample_weights=acts.type_as(self.W_dec)) + self.b_dec
        e = x - out
        tv = (x - x.mean(0)).pow(2).sum()
        return e.pow(2).sum() / tv, idx


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


class ScheduleFreeWrapper:
    """schedulefree.ScheduleFreeWrapper's step, with its swaps (momentum 0.95, r 0, power 2)."""

    def __init__(self, base, momentum=0.95):
        self.base = base
        self.momentum = momentum
        self.state = {}
        for g in base.param_groups:
            g.setdefault("lr_max", -1.0)
            g.setdefault("weight_sum", 0.0)
            g.setdefault("k", 0)

    @staticmethod
    def swap(x, y):
        tmp = x.data.clone()
        x.data.copy_(y.data)
        y.data.copy_(tmp)

    @torch.no_grad()
    def step(self):
        for g in self.base.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state.setdefault(p, {})
                if "z" not in st:
                    st["z"] = p.clone()
                z = st["z"]
                p.lerp_(end=z, weight=1 - 1 / self.momentum)
                self.swap(z, p)
        self.base.step()
        for g in self.base.param_groups:
            lr = max(g["lr"] * 1.0, 1e-8)
            lr_max = g["lr_max"] = max(lr, g["lr_max"])
            weight = ((g["k"] + 1) ** 0) * (lr_max ** 2)
            weight_sum = g["weight_sum"] = g["weight_sum"] + weight
            ckp1 = weight / weight_sum
            for p in g["params"]:
                if p.grad is None:
                    continue
                z = self.state[p]["z"]
                self.swap(z, p)
                p.lerp_(end=z, weight=ckp1)
                p.lerp_(end=z, weight=1 - self.momentum)
            g["k"] += 1

    def zero_grad(self):
        self.base.zero_grad()

    @torch.no_grad()
    def eval_params(self, sae):
        out = {}
        for name, p in sae.named_parameters():
            st = self.state.get(p)
            out[name] = p.detach().clone().lerp_(st["z"], 1 - 1 / self.momentum) if st else p.detach().clone()
        return out


def train(model, rows, hookpoints, *, k, num_latents, batch_size, optimizer, lr, warmup, seed=0):
    """Train one SAE per hookpoint as the reference does; returns {hookpoint: params}."""
    base = model.base_model
    saes = {}
    # widths from a dummy forward
    widths = {}
    hs = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: widths.__setitem__(h, (o[0] if isinstance(o, tuple) else o).shape[-1])) for h in hookpoints]
    model(**model.dummy_inputs)
    for x in hs:
        x.remove()
    for h in hookpoints:
        torch.manual_seed(seed)
        saes[h] = Sae(widths[h], num_latents, k)
    total = math.ceil(len(rows) / batch_size)
    if optimizer == "signum":
        pgs = [dict(params=list(s.parameters()), lr=lr) for s in saes.values()]
        opt = ScheduleFreeWrapper(SignSGD(pgs))
        sched = None
    else:
        opt = torch.optim.Adam([dict(params=list(s.parameters()), lr=lr) for s in saes.values()])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    step = 0
    for b in range(total):
        x = rows[b * batch_size : (b + 1) * batch_size]
        def hook(module, inputs, outputs, h=None):
            out = (outputs[0] if isinstance(outputs, tuple) else outputs).flatten(0, 1)
            sae = saes[h]
            if step == 0:
                sae.b_dec.data = out.mean(0).to(sae.b_dec.dtype)
            sae.set_decoder_norm_to_unit_norm()
            with torch.enable_grad():
                fvu, _ = sae(out)
                fvu.div(1).backward()
        handles = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: hook(m, i, o, h)) for h in hookpoints]
        with torch.no_grad():
            model(x)
        for hd in handles:
            hd.remove()
        for s in saes.values():
            s.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        if sched:
            sched.step()
        step += 1
    if optimizer == "signum":
        return {h: opt.eval_params(s) for h, s in saes.items()}
    return {h: {n: p.detach().clone() for n, p in s.named_parameters()} for h, s in saes.items()}


def train_ddp_emulation(model, rows, hookpoints, *, world, k, num_latents, batch_size, lr, seed=0):
    """What DDP defines, in one process: each emulated rank runs the model on its own
    contiguous shard (the remainder dropped), computes its fvu (normalised over its own
    batch) and backpropagates; gradients are averaged over ranks before each schedule-free
    signum step. The first batch's b_dec is the mean over ranks of their batch means."""
    base = model.base_model
    widths = {}
    hs = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: widths.__setitem__(h, (o[0] if isinstance(o, tuple) else o).shape[-1])) for h in hookpoints]
    model(**model.dummy_inputs)
    for x in hs:
        x.remove()
    saes = {}
    for h in hookpoints:
        torch.manual_seed(seed)
        saes[h] = Sae(widths[h], num_latents, k)
    opt = ScheduleFreeWrapper(SignSGD([dict(params=list(s.parameters()), lr=lr) for s in saes.values()]))
    shard = len(rows) // world
    shards = [rows[r * shard : (r + 1) * shard] for r in range(world)]
    steps = math.ceil(shard / batch_size)

    def activations(x):
        acts = {}
        handles = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: acts.__setitem__(h, (o[0] if isinstance(o, tuple) else o).flatten(0, 1))) for h in hookpoints]
        with torch.no_grad():
            model(x)
        for hd in handles:
            hd.remove()
        return acts

    for step in range(steps):
        per_rank = [activations(s[step * batch_size : (step + 1) * batch_size]) for s in shards]
        for h, sae in saes.items():
            if step == 0:
                sae.b_dec.data = torch.stack([a[h].mean(0) for a in per_rank]).mean(0)
            grads = None
            sae.set_decoder_norm_to_unit_norm()  # every replica normalises the same weights
            for a in per_rank:
                sae.zero_grad()
                with torch.enable_grad():
                    fvu, _ = sae(a[h])
                    fvu.backward()
                g = [p.grad.clone() for p in sae.parameters()]
                grads = g if grads is None else [x + y for x, y in zip(grads, g)]
            for p, g in zip(sae.parameters(), grads):
                p.grad = g / world
            sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
    return {h: opt.eval_params(s) for h, s in saes.items()}
