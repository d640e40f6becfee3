#!/usr/bin/env python3
"""PyTorch baseline for FlexStream's cuda backend: greedy generation with a random-weight OPT model of a given shape.

Same workload as `flexstream bench generate --shape opt-1.3b --batch 64 --prompt-len 128 --gen-len 32`: every prompt
is prompt-len random token ids (no padding), gen-len new tokens each (EOS ignored), KV cache, greedy. Tokens/s is
batch x gen-len / wall time of one whole generation (prefill included), median of --repeat timed runs after
--warmup untimed ones, with torch.cuda.synchronize() around each run.

Two implementations:
  hf     Hugging Face transformers' OPTForCausalLM (random init) and model.generate(), when transformers imports;
  plain  a direct PyTorch implementation of OPT's pre-LayerNorm decoder (shared/docs/OPT.md) with a preallocated
         KV cache and scaled_dot_product_attention, used when transformers is missing (or with --impl plain).
fp32 runs with TF32 off (PyTorch's default for matmuls), i.e. true fp32 like FlexStream's kernels; fp16 is what
production serving uses and is reported beside it.

Usage: python3 native/bench_pytorch.py [--shape opt-1.3b] [--batch 64] [--prompt-len 128] [--gen-len 32]
                                       [--dtypes fp32,fp16] [--impl auto|hf|plain] [--repeat 3] [--warmup 1]
Prints one human-readable line per run and a final JSON line per dtype ("RESULT {...}").
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# (hidden, layers, heads, ffn) of the OPT family, as io.flexstream.model.OptConfig's presets.
SHAPES = {
    "opt-125m": (768, 12, 12, 3072),
    "opt-350m-preln": (1024, 24, 16, 4096),  # opt-350m's size with the pre-LN layout (the plain path has no post-LN)
    "opt-1.3b": (2048, 24, 32, 8192),
    "opt-2.7b": (2560, 32, 32, 10240),
    "opt-6.7b": (4096, 32, 32, 16384),
}
VOCAB = 50272
MAX_POSITIONS = 2048


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", default="opt-1.3b", choices=sorted(SHAPES))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--gen-len", type=int, default=32)
    p.add_argument("--dtypes", default="fp32,fp16")
    p.add_argument("--impl", default="auto", choices=["auto", "hf", "plain"])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args()


def attention(q, k, v, causal):
    """Softmax attention (q is not pre-scaled here: SDPA scales by head_dim^-1/2 as OPT does)."""
    if hasattr(F, "scaled_dot_product_attention"):  # PyTorch 2.0+: fused kernels
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    # Older PyTorch (the build machine's Debian 1.13, used to check this script without a GPU): the same math.
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        t = q.shape[-2]
        mask = torch.ones(t, k.shape[-2], dtype=torch.bool, device=q.device).tril(k.shape[-2] - t)
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(q.dtype) @ v


class PlainOpt:
    """OPT pre-LN decoder with random weights (normal(0, 0.02), LayerNorm 1/0, as Hugging Face initialises)."""

    def __init__(self, hidden, layers, heads, ffn, dtype, device, seed):
        g = torch.Generator(device="cpu").manual_seed(seed)

        def normal(*shape):
            return (torch.randn(*shape, generator=g) * 0.02).to(device=device, dtype=dtype)

        def zeros(*shape):
            return torch.zeros(*shape, device=device, dtype=dtype)

        def ones(*shape):
            return torch.ones(*shape, device=device, dtype=dtype)

        self.hidden, self.heads, self.head_dim = hidden, heads, hidden // heads
        self.embed = normal(VOCAB, hidden)
        self.positions = normal(MAX_POSITIONS + 2, hidden)
        self.layers = []
        for _ in range(layers):
            self.layers.append({
                "qkv": normal(3 * hidden, hidden), "qkv_b": zeros(3 * hidden),  # q, k, v stacked: one GEMM
                "out": normal(hidden, hidden), "out_b": zeros(hidden),
                "ln1_w": ones(hidden), "ln1_b": zeros(hidden),
                "fc1": normal(ffn, hidden), "fc1_b": zeros(ffn),
                "fc2": normal(hidden, ffn), "fc2_b": zeros(hidden),
                "ln2_w": ones(hidden), "ln2_b": zeros(hidden),
            })
        self.final_w, self.final_b = ones(hidden), zeros(hidden)

    @torch.inference_mode()
    def generate(self, ids, gen_len):
        batch, prompt_len = ids.shape
        total = prompt_len + gen_len
        dev, dt = ids.device, self.embed.dtype
        cache = [(torch.empty(batch, self.heads, total, self.head_dim, device=dev, dtype=dt),
                  torch.empty(batch, self.heads, total, self.head_dim, device=dev, dtype=dt)) for _ in self.layers]
        out = torch.empty(batch, gen_len, dtype=torch.long, device=dev)
        tokens, start = ids, 0
        for step in range(gen_len):
            t = tokens.shape[1]
            pos = torch.arange(start, start + t, device=dev) + 2  # no padding: position p reads row p + 2
            x = self.embed[tokens] + self.positions[pos]
            for layer, (kc, vc) in zip(self.layers, cache):
                h = F.layer_norm(x, (self.hidden,), layer["ln1_w"], layer["ln1_b"], 1e-5)
                q, k, v = F.linear(h, layer["qkv"], layer["qkv_b"]).split(self.hidden, dim=-1)
                q = q.view(batch, t, self.heads, self.head_dim).transpose(1, 2)
                kc[:, :, start:start + t] = k.view(batch, t, self.heads, self.head_dim).transpose(1, 2)
                vc[:, :, start:start + t] = v.view(batch, t, self.heads, self.head_dim).transpose(1, 2)
                # Prefill: causal over the prompt; decode: one query sees every cached key.
                a = attention(q, kc[:, :, :start + t], vc[:, :, :start + t], causal=t > 1)
                x = x + F.linear(a.transpose(1, 2).reshape(batch, t, self.hidden), layer["out"], layer["out_b"])
                h = F.layer_norm(x, (self.hidden,), layer["ln2_w"], layer["ln2_b"], 1e-5)
                x = x + F.linear(F.relu(F.linear(h, layer["fc1"], layer["fc1_b"])), layer["fc2"], layer["fc2_b"])
            last = F.layer_norm(x[:, -1], (self.hidden,), self.final_w, self.final_b, 1e-5)
            nxt = (last @ self.embed.t()).argmax(dim=-1)
            out[:, step] = nxt
            tokens, start = nxt[:, None], start + t
        return out


def build_hf(hidden, layers, heads, ffn, dtype, device, seed):
    from transformers import OPTConfig, OPTForCausalLM
    torch.manual_seed(seed)
    config = OPTConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, ffn_dim=ffn,
                       num_attention_heads=heads, max_position_embeddings=MAX_POSITIONS, do_layer_norm_before=True,
                       word_embed_proj_dim=hidden, enable_bias=True, pad_token_id=1, bos_token_id=2, eos_token_id=2)
    with torch.device(device):  # initialise on the GPU: random init of 1.3B parameters on the CPU takes minutes
        model = OPTForCausalLM(config)
    return model.to(dtype).eval()


def hf_generate(model, ids, gen_len):
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=gen_len,
                             min_new_tokens=gen_len, do_sample=False, use_cache=True, pad_token_id=1)
    return out[:, ids.shape[1]:]


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    args = parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    impl = args.impl
    if impl == "auto":
        try:
            import transformers  # noqa: F401
            impl = "hf"
        except ImportError:
            impl = "plain"
    hidden, layers, heads, ffn = SHAPES[args.shape]
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"pytorch {torch.__version__} on {gpu}; impl {impl}; shape {args.shape} (hidden {hidden}, {layers} layers,"
          f" {heads} heads, ffn {ffn}); batch {args.batch}, prompt {args.prompt_len}, gen {args.gen_len}")
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    ids = torch.randint(4, VOCAB, (args.batch, args.prompt_len), generator=g).to(args.device)
    for name in [d.strip() for d in args.dtypes.split(",") if d.strip()]:
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
        if impl == "hf":
            model = build_hf(hidden, layers, heads, ffn, dtype, args.device, args.seed)
            run = lambda: hf_generate(model, ids, args.gen_len)  # noqa: E731
        else:
            model = PlainOpt(hidden, layers, heads, ffn, dtype, args.device, args.seed)
            run = lambda: model.generate(ids, args.gen_len)  # noqa: E731
        times = []
        for r in range(-args.warmup, args.repeat):
            sync(args.device)
            t0 = time.perf_counter()
            out = run()
            sync(args.device)
            secs = time.perf_counter() - t0
            assert out.shape == (args.batch, args.gen_len), out.shape
            tps = args.batch * args.gen_len / secs
            print(f"{name} {'warm-up' if r < 0 else 'run ' + str(r + 1)}: {secs:.3f} s, {tps:.1f} tokens/s")
            if r >= 0:
                times.append(secs)
        secs = statistics.median(times)
        result = {"impl": impl, "dtype": name, "shape": args.shape, "batch": args.batch,
                  "prompt_len": args.prompt_len, "gen_len": args.gen_len, "median_s": round(secs, 4),
                  "tokens_per_s": round(args.batch * args.gen_len / secs, 1), "device": gpu,
                  "torch": torch.__version__}
        print("RESULT " + json.dumps(result))
        del model, run
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
