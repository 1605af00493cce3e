"""saprmarks/dictionary_learning's training math, restated line by line from its source
(dictionary_learning/trainers/jumprelu.py, batch_top_k.py, top_k.py,
matryoshka_batch_top_k.py at 60ec6bf) for the side-by-side tests. Where sparsify's coders
differ on purpose, the function says so and takes the setting: its SAEs centre the input by
b_dec, and its losses are fvu (summed squared error over the target's total variance) where
dictionary_learning's are the per-token mean of the summed squared error (a constant factor:
total variance / tokens).

`real(root)` loads the library itself from a checkout (without its package __init__, which
imports nnsight), so that a test can check these restatements against it where one is present.
"""
import importlib
import sys
import types

import torch
import torch.autograd as autograd


# ---- trainers/jumprelu.py


class RectangleFunction(autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ((x > -0.5) & (x < 0.5)).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[(x <= -0.5) | (x >= 0.5)] = 0
        return grad_input


class JumpReLUFunction(autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, bandwidth):
        ctx.save_for_backward(x, threshold, torch.tensor(bandwidth))
        return x * (x > threshold).float()

    @staticmethod
    def backward(ctx, grad_output):
        x, threshold, bandwidth_tensor = ctx.saved_tensors
        bandwidth = bandwidth_tensor.item()
        x_grad = (x > threshold).float() * grad_output
        threshold_grad = -(threshold / bandwidth) * RectangleFunction.apply((x - threshold) / bandwidth) * grad_output
        return x_grad, threshold_grad, None


class StepFunction(autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, bandwidth):
        ctx.save_for_backward(x, threshold, torch.tensor(bandwidth))
        return (x > threshold).float()

    @staticmethod
    def backward(ctx, grad_output):
        x, threshold, bandwidth_tensor = ctx.saved_tensors
        bandwidth = bandwidth_tensor.item()
        x_grad = torch.zeros_like(x)
        threshold_grad = -(1.0 / bandwidth) * RectangleFunction.apply((x - threshold) / bandwidth) * grad_output
        return x_grad, threshold_grad, None


def jumprelu_loss(q, x, bandwidth, sparsity_coefficient, target_l0, sparsity_scale, centre=False):
    """JumpReluTrainer.loss with the SAE q (W_enc [D, M], b_enc, W_dec [M, D], b_dec,
    threshold); target_l0 None is the L0 penalty coef * l0 * scale (SAELens's form). With
    `centre`, the encoder reads x - b_dec, as sparsify's SAEs do. Returns the loss, its recon
    and sparsity terms, and l0."""
    sae_in = x - q["b_dec"] if centre else x
    pre_jump = sae_in @ q["W_enc"] + q["b_enc"]
    f = JumpReLUFunction.apply(pre_jump, q["threshold"], bandwidth)
    recon = f @ q["W_dec"] + q["b_dec"]
    recon_loss = (x - recon).pow(2).sum(dim=-1).mean()
    l0 = StepFunction.apply(f, q["threshold"], bandwidth).sum(dim=-1).mean()
    if target_l0 is None:
        sparsity_loss = sparsity_coefficient * l0 * sparsity_scale
    else:
        sparsity_loss = sparsity_coefficient * ((l0 / target_l0) - 1).pow(2) * sparsity_scale
    return {"loss": recon_loss + sparsity_loss, "recon": recon_loss, "sparsity": sparsity_loss, "l0": l0, "f": f}


def sparsity_warmup(step, sparsity_warmup_steps):
    """get_sparsity_warmup_fn's scale_fn (trainers/trainer.py)."""
    if not sparsity_warmup_steps:
        return 1.0
    return min(step / sparsity_warmup_steps, 1.0)


# ---- trainers/batch_top_k.py, matryoshka_batch_top_k.py


def batch_topk_encode(q, x, k):
    """BatchTopKSAE.encode(x, use_threshold=False) with sparsify's parameter names: relu of the
    centred pre-activations, the k * N largest of the batch kept."""
    post_relu = torch.relu((x - q["b_dec"]) @ q["encoder.weight"].T + q["encoder.bias"])
    flattened = post_relu.flatten()
    post_topk = flattened.topk(k * x.size(0), sorted=False, dim=-1)
    f = torch.zeros_like(post_relu.flatten()).scatter_(-1, post_topk.indices, post_topk.values).reshape(post_relu.shape)
    return f, post_relu


def batch_topk_update_threshold(threshold, f, beta):
    """BatchTopKTrainer.update_threshold: the returned value is the new ae.threshold."""
    active = f[f > 0]
    min_activation = 0.0 if active.size(0) == 0 else active.min().detach().to(dtype=torch.float32)
    return min_activation if threshold < 0 else (beta * threshold) + ((1 - beta) * min_activation)


def topk_update_threshold(threshold, top_acts_BK, beta):
    """TopKTrainer.update_threshold."""
    active = top_acts_BK.clone().detach()
    active[active <= 0] = float("inf")
    min_activation = active.min(dim=1).values.to(dtype=torch.float32).mean()
    return min_activation if threshold < 0 else (beta * threshold) + ((1 - beta) * min_activation)


def batch_topk_l2(q, x, k):
    """BatchTopKTrainer.loss's reconstruction term: decode(f) = f @ W_dec + b_dec, the per-token
    summed squared error, averaged (its AuxK term is left to the test: sparsify's AuxK is the
    reference's). Returns it and f."""
    f, _ = batch_topk_encode(q, x, k)
    x_hat = f @ q["W_dec"] + q["b_dec"]
    e = x - x_hat
    return e.pow(2).sum(dim=-1).mean(), f


def matryoshka_l2(q, x, f, group_sizes, group_weights):
    """MatryoshkaBatchTopKTrainer.loss's reconstruction losses: the running reconstruction over
    the groups of latents, each group's per-token summed squared error weighted, then their
    mean (the mean of the weighted losses, as it computes it). Returns the mean and the
    last reconstruction."""
    x_reconstruct = torch.zeros_like(x) + q["b_dec"]
    l2_losses = []
    W_dec_chunks = torch.split(q["W_dec"], group_sizes, dim=0)
    f_chunks = torch.split(f, group_sizes, dim=1)
    for i in range(len(group_sizes)):
        x_reconstruct = x_reconstruct + f_chunks[i] @ W_dec_chunks[i]
        l2_losses.append((x - x_reconstruct).pow(2).sum(dim=-1).mean() * group_weights[i])
    return torch.stack(l2_losses).mean(), x_reconstruct


def real(root):
    """The library's own modules from a checkout at `root` (its package __init__ skipped)."""
    for name, path in (("dictionary_learning", "dictionary_learning"), ("dictionary_learning.trainers", "dictionary_learning/trainers")):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [f"{root}/{path}"]
            sys.modules[name] = pkg
    return {
        "jumprelu": importlib.import_module("dictionary_learning.trainers.jumprelu"),
        "batch_top_k": importlib.import_module("dictionary_learning.trainers.batch_top_k"),
        "top_k": importlib.import_module("dictionary_learning.trainers.top_k"),
        "matryoshka": importlib.import_module("dictionary_learning.trainers.matryoshka_batch_top_k"),
    }
