class FusedEncoderGroupMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, k):
        v1 = F.linear(input, weight, bias)
        v2 = F.relu(v1)
        v3 = v2.unflatten(-1, (k, -1,))
        v4, v5 = v3.max(dim=-1)
        v6 = torch.arange(0, v2.shape[-1], (v2.shape[-1] // k), device=v2.device)
        v7 = v6 + v5
        ctx.save_for_backward(input, weight, bias, v7)
        ctx.k = k
        ctx.mark_non_differentiable(v7)
        return v4, v7, v2

    @staticmethod
    def backward(ctx, grad_values, grad_indices, grad_preacts):
        saved_input, saved_weight, saved_bias, saved_indices, = ctx.saved_tensors
        d_input = None
        if ctx.needs_input_grad[0]:
            v1 = grad_values.type_as(saved_weight)
            v2 = F.embedding_bag(saved_indices, saved_weight, mode="sum", per_sample_weights=v1)
            d_input = v2
        d_weight = None
        if ctx.needs_input_grad[1]:
            v3 = torch.zeros_like(saved_weight)
            v4 = grad_values.unsqueeze(2)
            v5 = saved_input.unsqueeze(1)
            v6 = v4 * v5
            v7 = saved_indices.flatten(0, -1)
            v8 = v6.reshape(-1, saved_input.shape[-1])
            v9 = v8.type_as(saved_weight)
            v3.index_add_(0, v7, v9)
            d_weight = v3
        d_bias = None
        if ctx.needs_input_grad[2]:
            v10 = torch.zeros_like(saved_bias)
            v11 = saved_indices.flatten(0, -1)
            v12 = grad_values.flatten(0, -1)
            v13 = v12.type_as(saved_bias)
            v10.index_add_(0, v11, v13)
            d_bias = v10
        return d_input, d_weight, d_bias, None


def coder_encode_groupmax_tc_norm(grad, params, x, k):
    with torch.set_grad_enabled(grad):
        v1 = params["encoder.weight"]
        v2 = params["encoder.bias"]
        v3, v4, v5 = FusedEncoderGroupMax.apply(x, v1, v2, k)
        return {"top_acts": v3, "top_indices": v4, "pre_acts": v5}
