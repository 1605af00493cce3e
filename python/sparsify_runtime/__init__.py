"""The generic compute runtime of sparsify for TypeScript.

It holds tensors behind handles, runs the programs the TypeScript side generates, loads
models, tokenizers and datasets, runs hooked forward passes, reads and writes safetensors,
and joins torch.distributed. It holds no sparse-coder math: that is authored in TypeScript
(src/activations, src/math, src/optimizers, src/trainer) and arrives as generated programs.

Layout: core.py (op registry, handles, errors, bundles; imports no op module), server.py
(dispatch; registers the ops), boot.py (start-up handshake), and one module per op prefix:
runtime, tensor, bundle, program, model, tokenizer, data, activation_cache, hooks, safetensors, state, dist,
wandb, and testing (only with SPARSIFY_TESTING=1). A tool may bring op files of its own
(SPARSIFY_RUNTIME_EXTENSIONS: the benchmarks' python/bench/bench_ops.py).
"""
