"""The reference library's training loop (fvu loss), restated in plain PyTorch for
side-by-side checks (sparsify/trainer.py: Trainer.fit, sparse_coder.py, muon.py): its
SparseCoder init and forward with AuxK and Multi-TopK, the fused encoder, SignSGD inside the
schedule-free wrapper (with its swaps), torch Adam and Muon with their linear schedules, k
decay, and the dead-latent counters over the tokens that are not excluded."""
import math

import torch
import torch.nn.functional as F


class FusedEncoder(torch.autograd.Function):
    """The reference's fused encoder (sparsify/fused_encoder.py, topk), restated for the tests."""

    @staticmethod
    def forward(ctx, input, weight, bias, k):
        preacts = F.relu(F.linear(input, weight, bias))
        values, indices = torch.topk(preacts, k, dim=-1, sorted=False)
        ctx.save_for_backward(input, weight, bias, indices)
        ctx.k = k
        return values, indices, preacts

    @staticmethod
    def backward(ctx, grad_values, grad_indices, grad_preacts):
        input, weight, bias, indices = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = F.embedding_bag(indices, weight, mode="sum", per_sample_weights=grad_values.type_as(weight))
        if ctx.needs_input_grad[1]:
            grad_weight = torch.zeros_like(weight)
            contributions = grad_values.unsqueeze(2) * input.unsqueeze(1)
            grad_weight.index_add_(0, indices.flatten(), contributions.reshape(-1, input.shape[-1]).type_as(weight))
        if ctx.needs_input_grad[2]:
            grad_bias = torch.zeros_like(bias)
            grad_bias.index_add_(0, indices.flatten(), grad_values.flatten().type_as(bias))
        return grad_input, grad_weight, grad_bias, None


class Sae(torch.nn.Module):
    """The reference's SparseCoder (topk SAE): init, forward with AuxK and Multi-TopK."""

    def __init__(self, d_in, num_latents, k, multi_topk=False):
        super().__init__()
        self.k = k
        self.multi_topk = multi_topk
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

    def decode(self, acts, idx):
        # The reference hands W_dec.mT to its decoder, which transposes it back.
        return F.embedding_bag(idx, self.W_dec.mT.mT, mode="sum", per_sample_weights=acts.type_as(self.W_dec)) + self.b_dec

    def forward(self, x, dead_mask=None):
        """(fvu, auxk_loss, multi_topk_fvu, latent indices) as the reference computes them."""
        acts, idx, pre = FusedEncoder.apply(x - self.b_dec, self.encoder.weight, self.encoder.bias, self.k)
        out = self.decode(acts, idx)
        e = x - out
        tv = (x - x.mean(0)).pow(2).sum()
        auxk = out.new_tensor(0.0)
        if dead_mask is not None:
            num_dead = int(dead_mask.sum())
            if num_dead > 0:
                k_aux = x.shape[-1] // 2
                scale = min(num_dead / k_aux, 1.0)
                masked = torch.where(dead_mask[None], pre, -torch.inf)
                aux_acts, aux_idx = masked.topk(min(k_aux, num_dead), sorted=False)
                auxk = scale * (self.decode(aux_acts, aux_idx) - e.detach()).pow(2).sum() / tv
        fvu = e.pow(2).sum() / tv
        mtk = out.new_tensor(0.0)
        if self.multi_topk:
            # The reference reassigns its variables here: the 4k selection is what it reports.
            acts, idx = pre.topk(4 * self.k, sorted=False)
            mtk = (self.decode(acts, idx) - x).pow(2).sum() / tv
        return fvu, auxk, mtk, idx


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


def quintic_newtonschulz(G, steps=5):
    """Muon's orthogonalisation: bf16, unit Frobenius norm, on the transpose when tall."""
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
    tall = G.size(-2) > G.size(-1)
    if tall:
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    return X.mT if tall else X


class Muon(torch.optim.Optimizer):
    """Muon on one process: weight decay, nesterov momentum, Newton-Schulz, scaled update."""

    def __init__(self, params, lr, momentum=0.95, weight_decay=0.1):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, beta = group["lr"], group["momentum"]
            for p in group["params"]:
                p.mul_(1 - lr * group["weight_decay"])
            for p in group["params"]:
                g = p.grad
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(g)
                buf = state["exp_avg"].lerp_(g, 1 - beta)
                g = quintic_newtonschulz(g.lerp_(buf, beta))
                p.add_(g, alpha=-lr * 0.2 * max(p.shape) ** 0.5)


def linear_schedule(optimizer, warmup, total):
    """transformers' get_linear_schedule_with_warmup."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))


def train(model, rows, hookpoints, *, k, num_latents, batch_size, optimizer, lr, warmup=1000, seed=0, k_decay_steps=0,
          auxk_alpha=0.0, dead_feature_threshold=10_000_000, exclude_tokens=(), multi_topk=False, grad_acc_steps=1):
    """Train one topk SAE per hookpoint as the reference's Trainer.fit does (fvu loss); returns
    {hookpoint: saved params}."""
    base = model.base_model
    widths = {}
    hs = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: widths.__setitem__(h, (o[0] if isinstance(o, tuple) else o).shape[-1])) for h in hookpoints]
    model(**model.dummy_inputs)
    for x in hs:
        x.remove()
    saes = {}
    for h in hookpoints:
        torch.manual_seed(seed)
        saes[h] = Sae(widths[h], num_latents, k, multi_topk)
    # The schedules run over whole batches only, though a short last batch is trained on.
    num_batches = len(rows) // batch_size
    schedulers = []
    if optimizer == "signum":
        optimizers = [ScheduleFreeWrapper(SignSGD([dict(params=list(s.parameters()), lr=lr) for s in saes.values()]))]
    elif optimizer == "adam":
        adam = torch.optim.Adam([dict(params=list(s.parameters()), lr=lr) for s in saes.values()])
        optimizers, schedulers = [adam], [linear_schedule(adam, warmup, num_batches)]
    else:
        params = [p for s in saes.values() for p in s.parameters()]
        muon = Muon([p for p in params if p.ndim >= 2], lr)
        adam = torch.optim.Adam([p for p in params if p.ndim < 2], lr=lr)
        optimizers = [muon, adam]
        schedulers = [linear_schedule(muon, 0, num_batches), linear_schedule(adam, warmup, num_batches)]

    initial_k = min(num_latents, round(list(widths.values())[0] * 10))

    def current_k(step):
        if step >= k_decay_steps:
            return k
        progress = step / k_decay_steps
        return round(initial_k * (1 - progress) + k * progress)

    since_fired = {h: torch.zeros(num_latents, dtype=torch.long) for h in hookpoints}
    did_fire = {h: torch.zeros(num_latents, dtype=torch.bool) for h in hookpoints}
    exclude = torch.tensor(list(exclude_tokens), dtype=torch.long)
    for s in saes.values():
        s.k = current_k(0)
    tokens_in_step = 0
    global_step = 0
    for b in range(math.ceil(len(rows) / batch_size)):
        x = rows[b * batch_size : (b + 1) * batch_size]
        mask = torch.isin(x, exclude, invert=True).flatten()
        tokens_in_step += int(mask.sum())

        def hook(module, inputs, outputs, h=None):
            out = (outputs[0] if isinstance(outputs, tuple) else outputs).flatten(0, 1)[mask]
            sae = saes[h]
            if global_step == 0:
                sae.b_dec.data = out.mean(0).to(sae.b_dec.dtype)
            sae.set_decoder_norm_to_unit_norm()
            dead = since_fired[h] > dead_feature_threshold if auxk_alpha > 0 else None
            with torch.enable_grad():
                fvu, auxk, mtk, idx = sae(out, dead)
                did_fire[h][idx.flatten()] = True
                (fvu + auxk_alpha * auxk + mtk / 8).div(grad_acc_steps).backward()

        handles = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: hook(m, i, o, h)) for h in hookpoints]
        with torch.no_grad():
            model(x)
        for hd in handles:
            hd.remove()
        if (global_step + 1) % grad_acc_steps == 0:
            for s in saes.values():
                s.remove_gradient_parallel_to_decoder_directions()
            for opt in optimizers:
                opt.step()
                opt.zero_grad()
            for sched in schedulers:
                sched.step()
            for s in saes.values():
                s.k = current_k(global_step)
            for h in hookpoints:
                since_fired[h] += tokens_in_step
                since_fired[h][did_fire[h]] = 0
                did_fire[h].zero_()
            tokens_in_step = 0
        global_step += 1
    if optimizer == "signum":
        return {h: optimizers[0].eval_params(s) for h, s in saes.items()}
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
                    fvu = sae(a[h])[0]
                    fvu.backward()
                g = [p.grad.clone() for p in sae.parameters()]
                grads = g if grads is None else [x + y for x, y in zip(grads, g)]
            for p, g in zip(sae.parameters(), grads):
                p.grad = g / world
            sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
    return {h: opt.eval_params(s) for h, s in saes.items()}
