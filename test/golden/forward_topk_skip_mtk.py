class FusedEncoderTopK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, k):
        v1 = F.linear(input, weight, bias)
        v2 = F.relu(v1)
        v3, v4 = torch.topk(v2, k, dim=-1, sorted=False)
        ctx.save_for_backward(input, weight, bias, v4)
        ctx.k = k
        ctx.mark_non_differentiable(v4)
        return v3, v4, v2

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


def coder_forward_topk_sae_skip_mtk_norm(grad, params, x, y, dead_mask, k):
    with torch.set_grad_enabled(grad):
        v1 = x if y is None else y
        v2 = params["b_dec"]
        v3 = x - v2
        v4 = params["encoder.weight"]
        v5 = params["encoder.bias"]
        v6, v7, v8 = FusedEncoderTopK.apply(v3, v4, v5, k)
        v9 = params["W_dec"]
        v10 = v6.type_as(v9)
        v11 = F.embedding_bag(v7, v9, mode="sum", per_sample_weights=v10)
        v12 = params["b_dec"]
        v13 = v11 + v12
        v14 = params["W_skip"]
        v15 = x.type_as(v14)
        v16 = v14.mT
        v17 = v15 @ v16
        v18 = v13 + v17
        v19 = v1 - v18
        v20 = v1.mean(0)
        v21 = v1 - v20
        v22 = v21.pow(2)
        v23 = v22.sum()
        if (not (dead_mask is None)):
            v24 = dead_mask.sum()
            v25 = int(v24)
            if (v25 > 0):
                v26 = dead_mask[None]
                v27 = torch.where(v26, v8, float('-inf'))
                v28, v29 = torch.topk(v27, min((v1.shape[-1] // 2), v25), dim=-1, sorted=False)
                v30 = params["W_dec"]
                v31 = v28.type_as(v30)
                v32 = F.embedding_bag(v29, v30, mode="sum", per_sample_weights=v31)
                v33 = params["b_dec"]
                v34 = v32 + v33
                v35 = v19.detach()
                v36 = v34 - v35
                v37 = v36.pow(2)
                v38 = v37.sum()
                v39 = v38 * min((v25 / (v1.shape[-1] // 2)), 1.0)
                v40 = v39 / v23
                v41 = v40
            else:
                v42 = v18.new_tensor(0.0)
                v41 = v42
            v43 = v41
        else:
            v44 = v18.new_tensor(0.0)
            v43 = v44
        v45 = v19.pow(2)
        v46 = v45.sum()
        v47 = v46 / v23
        v48, v49 = torch.topk(v8, (k * 4), dim=-1, sorted=False)
        v50 = params["W_dec"]
        v51 = v48.type_as(v50)
        v52 = F.embedding_bag(v49, v50, mode="sum", per_sample_weights=v51)
        v53 = params["b_dec"]
        v54 = v52 + v53
        v55 = v54 - v1
        v56 = v55.pow(2)
        v57 = v56.sum()
        v58 = v57 / v23
        return {"sae_out": v18, "latent_acts": v6, "latent_indices": v7, "fvu": v47, "auxk_loss": v43, "multi_topk_fvu": v58}
