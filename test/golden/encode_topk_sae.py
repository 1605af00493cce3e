class FusedEncoderTopK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, k):
        linear = F.linear(input, weight, bias)
        preacts = F.relu(linear)
        values, indices = torch.topk(preacts, k, dim=-1, sorted=False)
        ctx.save_for_backward(input, weight, bias, indices)
        ctx.k = k
        ctx.mark_non_differentiable(indices)
        ctx.set_materialize_grads(False)
        return values, indices, preacts

    @staticmethod
    def backward(ctx, grad_values, grad_indices, grad_preacts):
        saved_input, saved_weight, saved_bias, saved_indices, = ctx.saved_tensors
        if grad_values is None:
            return None, None, None, None
        d_input = None
        if ctx.needs_input_grad[0]:
            type_as = grad_values.type_as(saved_weight)
            grad_input = F.embedding_bag(saved_indices, saved_weight, mode="sum", per_sample_weights=type_as)
            d_input = grad_input
        d_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = torch.zeros_like(saved_weight)
            unsqueeze = grad_values.unsqueeze(2)
            unsqueeze_1 = saved_input.unsqueeze(1)
            contributions = unsqueeze * unsqueeze_1
            flatten = saved_indices.flatten(0, -1)
            reshape = contributions.reshape(-1, saved_input.shape[-1])
            type_as_1 = reshape.type_as(saved_weight)
            grad_weight.index_add_(0, flatten, type_as_1)
            d_weight = grad_weight
        d_bias = None
        if ctx.needs_input_grad[2]:
            grad_bias = torch.zeros_like(saved_bias)
            flatten_1 = saved_indices.flatten(0, -1)
            flatten_2 = grad_values.flatten(0, -1)
            type_as_2 = flatten_2.type_as(grad_bias)
            grad_bias.index_add_(0, flatten_1, type_as_2)
            d_bias = grad_bias
        return d_input, d_weight, d_bias, None


def coder_encode_topk_sae_norm(grad, params, x, k):
    with torch.set_grad_enabled(grad):
        encoder_weight = params["encoder.weight"]
        x_in = x.type_as(encoder_weight)
        encoder_weight_1 = params["encoder.weight"]
        encoder_bias = params["encoder.bias"]
        b_dec = params["b_dec"]
        centered = x_in - b_dec
        top_acts, top_indices, pre_acts = FusedEncoderTopK.apply(centered, encoder_weight_1, encoder_bias, k)
        return {"top_acts": top_acts, "top_indices": top_indices, "pre_acts": pre_acts}
