"""The reference library's SAE training forward/backward, written directly in Python
(its FusedEncoder, eager decode and fvu), for the kernel-path benchmark."""
import time

import torch
import torch.nn.functional as F


class FusedEncoder(torch.autograd.Function):
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


def step(params, x, k):
    top_acts, top_indices, pre_acts = FusedEncoder.apply(x - params["b_dec"], params["encoder.weight"], params["encoder.bias"], k)
    sae_out = F.embedding_bag(top_indices, params["W_dec"], mode="sum", per_sample_weights=top_acts.type_as(params["W_dec"])) + params["b_dec"]
    e = x - sae_out
    total_variance = (x - x.mean(0)).pow(2).sum()
    fvu = e.pow(2).sum() / total_variance
    fvu.backward()
    for p in params.values():
        p.grad = None
    return fvu.item()


def time_steps(params, x, k, warmup, iters):
    for _ in range(warmup):
        step(params, x, k)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step(params, x, k)
        times.append(time.perf_counter() - t0)
    return times
