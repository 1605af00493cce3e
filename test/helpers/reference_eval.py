"""Evaluation metrics restated in plain PyTorch, token by token where it helps, to check the
TS-authored programs: dense encode/decode, explicit loops over the forwards of each batch."""
import math

import torch
import torch.nn.functional as F


def reconstruct(p, x, k, activation="topk", transcode=False):
    """(reconstruction, selected activations, selected indices), densely."""
    pre = F.relu((x if transcode else x - p["b_dec"]) @ p["encoder.weight"].T + p["encoder.bias"])
    if activation == "topk":
        acts, idx = pre.topk(k, dim=-1, sorted=False)
    else:
        m = pre.shape[-1]
        acts, pos = pre.unflatten(-1, (k, m // k)).max(dim=-1)
        idx = pos + torch.arange(0, m, m // k)
    dense = torch.zeros_like(pre).scatter(1, idx, acts)
    out = dense @ p["W_dec"] + p["b_dec"]
    if "W_skip" in p:
        out = out + x @ p["W_skip"].T
    return out, acts, idx


def _first(o):
    return o[0] if isinstance(o, tuple) else o


def evaluate(model, rows, coders, *, batch_size, exclude, splice):
    """coders: {name: (hookpoint, params, k, activation, transcode)}. Returns the report's numbers."""
    base = model.base_model
    exclude = torch.tensor(sorted(exclude), dtype=torch.long)
    stats = {n: dict(fvu=[], sq=0.0, y2=0.0, sy=None, n=0, l0=0, counts=None, ce_s=0.0, kl_s=0.0, ce_z=0.0, kl_z=0.0) for n in coders}
    model_stats = dict(ce=0.0, pos=0.0, ce_sa=0.0, kl_sa=0.0, ce_za=0.0, kl_za=0.0)

    def token_ce(logits, ids, keep):
        lp = logits.float().log_softmax(-1)
        ce = -lp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
        w = (keep[:, :-1] & keep[:, 1:]).double()
        return lp, ce, w

    def run(ids, replace):
        """A forward where replace(name_of_module, input, output) may give a new output."""
        handles = []
        for hp in {c[0] for c in coders.values()}:
            def hook(m, args, out, hp=hp):
                new = replace(hp, args[0] if args else None, _first(out))
                if new is None:
                    return None
                return (new, *out[1:]) if isinstance(out, tuple) else new
            handles.append(base.get_submodule(hp).register_forward_hook(hook))
        try:
            with torch.no_grad():
                return model(ids).logits
        finally:
            for h in handles:
                h.remove()

    for b in range(0, len(rows), batch_size):
        ids = rows[b : b + batch_size]
        keep = ~torch.isin(ids, exclude)
        flat_keep = keep.flatten()
        seen = {}

        def capture(hp, inp, out):
            seen[hp] = (inp, out)
            return None

        clean_logits = run(ids, capture)
        clean_lp, ce, w = token_ce(clean_logits, ids, keep)
        model_stats["ce"] += float((ce.double() * w).sum())
        model_stats["pos"] += float(w.sum())
        recons = {}
        for name, (hp, p, k, act, tc) in coders.items():
            inp, out = seen[hp]
            y_all = out.flatten(0, 1)
            y = y_all[flat_keep]
            x = inp.flatten(0, 1)[flat_keep] if tc else y
            r, acts, idx = reconstruct(p, x, k, act, tc)
            s = stats[name]
            e = y - r
            s["fvu"].append(float(e.pow(2).sum() / (y - y.mean(0)).pow(2).sum()))
            s["sq"] += float(e.double().pow(2).sum())
            s["y2"] += float(y.double().pow(2).sum())
            s["sy"] = y.double().sum(0) if s["sy"] is None else s["sy"] + y.double().sum(0)
            s["n"] += y.shape[0]
            fired = acts > 0
            s["l0"] += int(fired.sum())
            c = torch.zeros(p["encoder.weight"].shape[0], dtype=torch.long).index_add_(0, idx.flatten(), fired.flatten().long())
            s["counts"] = c if s["counts"] is None else s["counts"] + c
            patched = y_all.clone()
            patched[flat_keep] = r
            recons[name] = patched.reshape(out.shape)

        def patched_metrics(logits):
            lp, ce_p, _ = token_ce(logits, ids, keep)
            kl = (clean_lp.exp() * (clean_lp - lp)).sum(-1)[:, :-1]
            return float((ce_p.double() * w).sum()), float((kl.double() * w).sum())

        if splice in ("each", "both"):
            for name, (hp, *_rest) in coders.items():
                ce_s, kl_s = patched_metrics(run(ids, lambda h, i, o, hp=hp, name=name: recons[name] if h == hp else None))
                stats[name]["ce_s"] += ce_s
                stats[name]["kl_s"] += kl_s

                def zero(h, i, o, hp=hp):
                    if h != hp:
                        return None
                    z = o.flatten(0, 1).clone()
                    z[flat_keep] = 0
                    return z.reshape(o.shape)

                ce_z, kl_z = patched_metrics(run(ids, zero))
                stats[name]["ce_z"] += ce_z
                stats[name]["kl_z"] += kl_z
        if splice in ("all", "both"):
            by_hp = {}
            for name, c in coders.items():
                by_hp.setdefault(c[0], (name, c))

            def live(h, i, o):
                name, (hp, p, k, act, tc) = by_hp[h]
                y_all = o.flatten(0, 1)
                x = (i.flatten(0, 1) if tc else y_all)[flat_keep]
                r, _, _ = reconstruct(p, x, k, act, tc)
                out = y_all.clone()
                out[flat_keep] = r
                return out.reshape(o.shape)

            ce_a, kl_a = patched_metrics(run(ids, live))
            model_stats["ce_sa"] += ce_a
            model_stats["kl_sa"] += kl_a

            def zero_all(h, i, o):
                z = o.flatten(0, 1).clone()
                z[flat_keep] = 0
                return z.reshape(o.shape)

            ce_z, kl_z = patched_metrics(run(ids, zero_all))
            model_stats["ce_za"] += ce_z
            model_stats["kl_za"] += kl_z

    pos = model_stats["pos"]

    def splice_metrics(ce_s, ce_z, kl_s, kl_z):
        cc = model_stats["ce"] / pos
        cs, cz, ks, kz = ce_s / pos, ce_z / pos, kl_s / pos, kl_z / pos
        return dict(ce_clean=cc, ce_spliced=cs, ce_zero=cz, ce_delta=cs - cc, ce_loss_recovered=(cz - cs) / (cz - cc), kl_spliced=ks, kl_zero=kz, kl_score=(kz - ks) / kz)

    out = {}
    for name, s in stats.items():
        n = s["n"]
        density = s["counts"].double() / n
        out[name] = dict(
            fvu=sum(s["fvu"]) / len(s["fvu"]),
            explained_variance=1 - s["sq"] / (s["y2"] - float(s["sy"].pow(2).sum()) / n),
            l0=s["l0"] / n,
            dead_frac=float((density == 0).double().mean()),
            dense_frac_1pct=float((density > 0.01).double().mean()),
            dense_frac_10pct=float((density > 0.1).double().mean()),
            tokens=n,
            splice=splice_metrics(s["ce_s"], s["ce_z"], s["kl_s"], s["kl_z"]) if splice in ("each", "both") else None,
        )
    out["__all__"] = splice_metrics(model_stats["ce_sa"], model_stats["ce_za"], model_stats["kl_sa"], model_stats["kl_za"]) if splice in ("all", "both") else None
    out["__positions__"] = pos
    return out
