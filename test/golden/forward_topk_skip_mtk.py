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


def coder_forward_topk_sae_skip_mtk_norm(grad, params, x, y, dead_mask, k):
    with torch.set_grad_enabled(grad):
        encoder_weight = params["encoder.weight"]
        x_in = x.type_as(encoder_weight)
        value = x_in if y is None else y
        target = value.type_as(encoder_weight)
        encoder_weight_1 = params["encoder.weight"]
        encoder_bias = params["encoder.bias"]
        b_dec = params["b_dec"]
        centered = x_in - b_dec
        top_acts, top_indices, pre_acts = FusedEncoderTopK.apply(centered, encoder_weight_1, encoder_bias, k)
        mean = target.mean(0)
        sub = target - mean
        pow_1 = sub.pow(2)
        total_variance = pow_1.sum()
        W_dec = params["W_dec"]
        type_as = top_acts.type_as(W_dec)
        mT = W_dec.mT
        W_dec_view = mT.mT
        embedding_bag = F.embedding_bag(top_indices, W_dec_view, mode="sum", per_sample_weights=type_as)
        b_dec_1 = params["b_dec"]
        decoded = embedding_bag + b_dec_1
        W_skip = params["W_skip"]
        type_as_1 = x_in.type_as(W_skip)
        mT_1 = W_skip.mT
        skip = type_as_1 @ mT_1
        sae_out = decoded + skip
        e = target - sae_out
        if (not (dead_mask is None)):
            sum_1 = dead_mask.sum()
            num_dead = int(sum_1)
            if (num_dead > 0):
                expanded = dead_mask[None]
                auxk_latents = torch.where(expanded, pre_acts, float('-inf'))
                auxk_acts, auxk_indices = torch.topk(auxk_latents, min((target.shape[-1] // 2), num_dead), dim=-1, sorted=False)
                W_dec_1 = params["W_dec"]
                type_as_2 = auxk_acts.type_as(W_dec_1)
                mT_2 = W_dec_1.mT
                W_dec_view_1 = mT_2.mT
                embedding_bag_1 = F.embedding_bag(auxk_indices, W_dec_view_1, mode="sum", per_sample_weights=type_as_2)
                b_dec_2 = params["b_dec"]
                e_hat = embedding_bag_1 + b_dec_2
                detach = e.detach()
                sub_1 = e_hat - detach
                pow_2 = sub_1.pow(2)
                sum_2 = pow_2.sum()
                mul = sum_2 * min((num_dead / (target.shape[-1] // 2)), 1.0)
                div = mul / total_variance
                auxk_loss = div
            else:
                new_tensor = sae_out.new_full((), 0.0)
                auxk_loss = new_tensor
            auxk_loss_1 = auxk_loss
        else:
            new_tensor_1 = sae_out.new_full((), 0.0)
            auxk_loss_1 = new_tensor_1
        pow_3 = e.pow(2)
        sum_3 = pow_3.sum()
        fvu = sum_3 / total_variance
        topk_values, topk_indices = torch.topk(pre_acts, (k * 4), dim=-1, sorted=False)
        W_dec_2 = params["W_dec"]
        type_as_3 = topk_values.type_as(W_dec_2)
        mT_3 = W_dec_2.mT
        W_dec_view_2 = mT_3.mT
        embedding_bag_2 = F.embedding_bag(topk_indices, W_dec_view_2, mode="sum", per_sample_weights=type_as_3)
        b_dec_3 = params["b_dec"]
        sae_out_4k = embedding_bag_2 + b_dec_3
        sub_2 = sae_out_4k - target
        pow_4 = sub_2.pow(2)
        sum_4 = pow_4.sum()
        multi_topk_fvu = sum_4 / total_variance
        return {"sae_out": sae_out_4k, "latent_acts": topk_values, "latent_indices": topk_indices, "fvu": fvu, "auxk_loss": auxk_loss_1, "multi_topk_fvu": multi_topk_fvu}
