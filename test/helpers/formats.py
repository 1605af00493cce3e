# What SAELens and circuit-tracer read and compute, restated line by line from their sources
# for the export tests (neither library is installable here):
# - SAELens 6.49.2 (decoderesearch/SAELens): sae_lens/saes/sae.py (SAEConfig: d_in, d_sae, dtype,
#   device, apply_b_dec_to_input, normalize_activations, reshape_activations, metadata;
#   process_sae_in subtracts b_dec * apply_b_dec_to_input), saes/topk_sae.py (TopKSAEConfig: k,
#   rescale_acts_by_decoder_norm; TopK: torch.topk(x, k, sorted=False), then .relu() of the
#   values), saes/jumprelu_sae.py (relu(pre) * (pre > threshold.relu())), saes/transcoder.py
#   (TranscoderConfig: d_out, apply_b_dec_to_input must be False; skip_out = x @ W_skip.T;
#   JumpReLUTranscoder: relu(pre) * (pre > threshold)), the tensors of each class's
#   initialize_weights, loaded with load_state_dict(strict=True); loading/sae_lens_disk_loader
#   (cfg["dtype"] through DTYPE_MAP; a config without metadata.sae_lens_version >= 6 takes the
#   pre-6.0 path).
# - circuit-tracer (decoderesearch/circuit-tracer @4bb8c0ea): transcoder/single_layer_transcoder.py
#   (load_transcoder: d_sae = b_enc.shape[0], d_model = b_dec.shape[0], JumpReLU from
#   "activation_function.threshold"; encode F.linear(x, W_enc, b_enc); decode acts @ W_dec +
#   b_dec + x @ W_skip.T), transcoder/activation_functions.py (jumprelu: x * (x > threshold);
#   TopK: topk of x, x * gate, no relu), utils/hf_utils.py load_transcoders (model_kind,
#   feature_input_hook, feature_output_hook, activation, k), transcoder/cross_layer_transcoder.py
#   @b00048e (_load_state_dict: n_layers = the W_enc_*.safetensors files; W_enc_{i} [d_transcoder,
#   d_model], b_enc_{i}, b_dec_{i}, threshold_{i} when threshold_0 is there (then jump_relu, else
#   relu); W_dec_{i} [d_transcoder, n_layers - i, d_model]; encode: einsum of x and W_enc + b_enc,
#   then the activation; compute_reconstruction: index_add of each source's scaled decoders into
#   its targets, + b_dec per layer).
import json
import pathlib

import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file

SAELENS_ARCHITECTURES = {
    "standard": {"W_enc", "b_enc", "W_dec", "b_dec"},
    "topk": {"W_enc", "b_enc", "W_dec", "b_dec"},
    "jumprelu": {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"},
    "transcoder": {"W_enc", "b_enc", "W_dec", "b_dec"},
    "skip_transcoder": {"W_enc", "b_enc", "W_dec", "b_dec", "W_skip"},
    "jumprelu_transcoder": {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"},
    "jumprelu_skip_transcoder": {"W_enc", "b_enc", "W_dec", "b_dec", "threshold", "W_skip"},
}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def saelens_load(folder):
    """cfg and tensors as SAE.load_from_disk takes them, with its checks; raises on what it would reject."""
    folder = pathlib.Path(folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    version = cfg.get("metadata", {}).get("sae_lens_version") or cfg.get("sae_lens_version")
    assert version is not None and int(version.split(".")[0]) >= 6, "pre-6.0 config path"
    arch = cfg["architecture"]
    assert arch in SAELENS_ARCHITECTURES, f"no SAELens class {arch}"
    dtype = DTYPES[cfg["dtype"]]
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    transcoder = "transcoder" in arch
    d_out = cfg["d_out"] if transcoder else d_in
    if transcoder:
        assert cfg["apply_b_dec_to_input"] is False, "TranscoderConfig rejects apply_b_dec_to_input"
    t = {k: v.to(dtype) for k, v in load_file(str(folder / "sae_weights.safetensors")).items()}
    assert set(t) == SAELENS_ARCHITECTURES[arch], f"tensors {sorted(t)} for {arch}"
    shapes = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_out), "b_dec": (d_out,), "threshold": (d_sae,), "W_skip": (d_out, d_in)}
    for k, v in t.items():
        assert tuple(v.shape) == shapes[k], f"{k}: {tuple(v.shape)} != {shapes[k]}"
    return cfg, t


def saelens_forward(cfg, t, x):
    """encode then decode as the SAELens class of cfg["architecture"] does (inference)."""
    arch = cfg["architecture"]
    sae_in = x.to(t["W_enc"].dtype)
    if cfg.get("apply_b_dec_to_input", True) and "transcoder" not in arch:
        sae_in = sae_in - t["b_dec"]
    pre = sae_in @ t["W_enc"] + t["b_enc"]
    if arch == "topk":
        top = torch.topk(pre, k=cfg["k"], dim=-1, sorted=False)
        acts = torch.zeros_like(pre).scatter_(-1, top.indices, top.values.relu())
    elif arch == "jumprelu":
        acts = torch.relu(pre) * (pre > t["threshold"].relu())
    elif arch.startswith("jumprelu"):
        acts = torch.relu(pre) * (pre > t["threshold"])
    else:
        acts = torch.relu(pre)
    out = acts @ t["W_dec"] + t["b_dec"]
    if "W_skip" in t:
        out = out + x.to(t["W_skip"].dtype) @ t["W_skip"].T
    return acts, out


def circuit_tracer_load(folder):
    """config.yaml and each layer's tensors as load_transcoders / load_transcoder take them."""
    folder = pathlib.Path(folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["model_kind"] == "transcoder_set"
    for key in ("feature_input_hook", "feature_output_hook", "scan"):
        assert key in config, key
    layers = sorted(int(p.stem.split("_")[1]) for p in folder.glob("layer_*.safetensors"))
    assert layers == list(range(len(layers))), f"layers {layers}"
    files = [load_file(str(folder / f"layer_{i}.safetensors")) for i in layers]
    for f in files:
        extra = set(f) - {"W_enc", "W_dec", "b_enc", "b_dec", "W_skip", "activation_function.threshold"}
        assert not extra, f"unexpected {extra}"
        d_sae, d_model = f["b_enc"].shape[0], f["b_dec"].shape[0]
        assert tuple(f["W_enc"].shape) == (d_sae, d_model) and tuple(f["W_dec"].shape) == (d_sae, d_model)
        if "W_skip" in f:
            assert tuple(f["W_skip"].shape) == (d_model, d_model)
    if config.get("activation") == "topk":
        assert isinstance(config.get("k"), int)
    return config, files


def circuit_tracer_forward(config, f, x):
    """One layer's encode then decode (with the skip connection) as circuit-tracer computes them."""
    pre = F.linear(x.to(f["W_enc"].dtype), f["W_enc"], f["b_enc"])
    if config.get("activation") == "topk":
        _, idx = torch.topk(pre, k=config["k"], dim=-1)
        gate = torch.zeros_like(pre).scatter_(-1, idx, 1)
        acts = pre * gate
    elif config.get("activation") == "relu":
        acts = F.relu(pre)
    elif "activation_function.threshold" in f:
        acts = (pre * (pre > f["activation_function.threshold"])).to(pre)
    else:
        acts = F.relu(pre)
    out = acts @ f["W_dec"] + f["b_dec"]
    if "W_skip" in f:
        out = out + x @ f["W_skip"].T
    return acts, out


def circuit_tracer_load_clt(folder):
    """config.yaml and the state dict as load_clt / _load_state_dict build them (not lazy)."""
    folder = pathlib.Path(folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["model_kind"] == "cross_layer_transcoder"
    for key in ("feature_input_hook", "feature_output_hook", "scan"):
        assert key in config, key
    n = len(list(folder.glob("W_enc_*.safetensors")))
    first = load_file(str(folder / "W_enc_0.safetensors"))
    d_transcoder, d_model = first["W_enc_0"].shape
    has_threshold = "threshold_0" in first
    state = {"W_enc": torch.zeros(n, d_transcoder, d_model), "b_enc": torch.zeros(n, d_transcoder), "b_dec": torch.zeros(n, d_model), "W_dec": []}
    if has_threshold:
        state["threshold"] = torch.zeros(n, 1, d_transcoder)
    for i in range(n):
        f = load_file(str(folder / f"W_enc_{i}.safetensors"))
        extra = set(f) - {f"W_enc_{i}", f"b_enc_{i}", f"b_dec_{i}", f"threshold_{i}"}
        assert not extra, f"unexpected {extra}"
        state["W_enc"][i] = f[f"W_enc_{i}"]
        state["b_enc"][i] = f[f"b_enc_{i}"]
        state["b_dec"][i] = f[f"b_dec_{i}"]
        if has_threshold:
            state["threshold"][i] = f[f"threshold_{i}"].unsqueeze(0)
        d = load_file(str(folder / f"W_dec_{i}.safetensors"))
        assert set(d) == {f"W_dec_{i}"}, set(d)
        assert tuple(d[f"W_dec_{i}"].shape) == (d_transcoder, n - i, d_model), d[f"W_dec_{i}"].shape
        state["W_dec"].append(d[f"W_dec_{i}"])
    return config, state


def circuit_tracer_clt_forward(state, x):
    """encode (relu, or jump_relu with the thresholds) and decode of x [n_layers, n_pos, d_model]."""
    features = torch.einsum("lbd,lfd->lbf", x, state["W_enc"]) + state["b_enc"][:, None]
    if "threshold" in state:
        features = features * (features > state["threshold"])
    else:
        features = F.relu(features)
    n = x.shape[0]
    recon = torch.zeros_like(x)
    for i in range(n):
        for t in range(n - i):
            recon[i + t] += features[i] @ state["W_dec"][i][:, t, :]
    return features, recon + state["b_dec"][:, None]
