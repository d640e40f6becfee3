"""PyTorch baseline for `flexstream bench generate --pytorch PYTHON`.

Greedy generation with a KV cache on a random-weight OPT model of the shape given on the command line (pre-LayerNorm,
ReLU, tied head, learned positions with OPT's offset of 2), in fp32 on the CPU, with plain PyTorch operators and a
preallocated cache, without Hugging Face's generate() overheads. The same work as the engine's benchmark: every prompt
has the same length, the head runs only at sampled positions, EOS is ignored.

Two ways to run the matrix products (--linear):
- standard: F.linear(x, w, b) on [out, in] weights, which is what torch.nn.Linear (and so Hugging Face's OPT) runs.
- tuned: x @ w_t on weights transposed once to [in, out], then the bias added in place. With PyTorch 1.13 and OpenBLAS
  0.3.21 (Debian 12) on 2 threads this ran the 32-row decode products 1.1-4.5x faster than F.linear with a bias
  (addmm on the transposed view); in whole generations its medians came out 4-16% ahead of standard (2026-11-27).

Protocol, one JSON object per line on stdout: first {"ready": ...} with the versions and thread count, then one
{"seconds", "prefill", "decode"} per line "run" read from stdin, so that the Java side can interleave these runs with
its own; end of input ends the process.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def parse():
    p = argparse.ArgumentParser()
    for name in ("hidden", "layers", "heads", "ffn", "vocab", "batch", "prompt-len", "gen-len", "threads", "seed"):
        p.add_argument("--" + name, type=int, required=True)
    p.add_argument("--linear", choices=("standard", "tuned"), default="standard")
    return p.parse_args()


class Linear:
    """One weight matrix [out, in] and its bias, applied as --linear says."""

    def __init__(self, weight, bias, tuned):
        self.tuned = tuned
        self.weight = weight.t().contiguous() if tuned else weight
        self.bias = bias

    def __call__(self, x):
        if not self.tuned:
            return F.linear(x, self.weight, self.bias)
        y = x @ self.weight
        return y if self.bias is None else y.add_(self.bias)


class Model:
    def __init__(self, a):
        g = torch.Generator().manual_seed(a.seed)
        h, f = a.hidden, a.ffn

        def rand(*shape):
            return torch.randn(*shape, generator=g) * 0.02

        def linear(weight, bias):
            return Linear(weight, bias, a.linear == "tuned")

        self.heads = a.heads
        self.embed = rand(a.vocab, h)
        self.positions = rand(a.prompt_len + a.gen_len + 2, h)
        self.layers = []
        for _ in range(a.layers):
            self.layers.append(dict(
                ln1=(torch.ones(h), torch.zeros(h)), qkv=linear(rand(3 * h, h), rand(3 * h)),
                out=linear(rand(h, h), rand(h)), ln2=(torch.ones(h), torch.zeros(h)),
                fc1=linear(rand(f, h), rand(f)), fc2=linear(rand(h, f), rand(h))))
        self.final_ln = (torch.ones(h), torch.zeros(h))
        self.head = linear(self.embed, None)  # tied to the input embedding

    def forward(self, ids, start, caches):
        """Hidden states of the last position for ids [B, T] at positions start..start+T-1, filling the caches."""
        b, t = ids.shape
        h = self.embed.shape[1]
        hd = h // self.heads
        x = self.embed[ids] + self.positions[start + 2:start + 2 + t]
        mask = None
        if t > 1:
            mask = torch.full((t, t), float("-inf")).triu(1)
        for layer, (kc, vc) in zip(self.layers, caches):
            y = F.layer_norm(x, (h,), *layer["ln1"])
            q, k, v = layer["qkv"](y).split(h, dim=-1)
            q = q.view(b, t, self.heads, hd).transpose(1, 2) * hd ** -0.5
            kc[:, :, start:start + t] = k.view(b, t, self.heads, hd).transpose(1, 2)
            vc[:, :, start:start + t] = v.view(b, t, self.heads, hd).transpose(1, 2)
            scores = q @ kc[:, :, :start + t].transpose(2, 3)
            if mask is not None:
                scores = scores + mask
            context = (scores.softmax(-1) @ vc[:, :, :start + t]).transpose(1, 2).reshape(b, t, h)
            x = x + layer["out"](context)
            y = F.layer_norm(x, (h,), *layer["ln2"])
            x = x + layer["fc2"](F.relu(layer["fc1"](y)))
        return F.layer_norm(x[:, -1], (h,), *self.final_ln)

    def next_tokens(self, last_hidden):
        return self.head(last_hidden).argmax(-1, keepdim=True)


def generate(model, prompts, gen_len):
    b, s = prompts.shape
    h = model.embed.shape[1]
    hd = h // model.heads
    caches = [(torch.empty(b, model.heads, s + gen_len, hd), torch.empty(b, model.heads, s + gen_len, hd))
              for _ in model.layers]
    start = time.perf_counter()
    token = model.next_tokens(model.forward(prompts, 0, caches))
    prefill = time.perf_counter() - start
    for step in range(1, gen_len):
        token = model.next_tokens(model.forward(token, s + step - 1, caches))
    total = time.perf_counter() - start
    return total, prefill, total - prefill


def blas_library():
    """The BLAS shared library this process loaded (Debian picks it with update-alternatives), from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line.split()[-1].rsplit("/", 1)[-1]}
        return ", ".join(sorted(paths)) or "none loaded"
    except OSError:
        return "unknown"


def main():
    a = parse()
    torch.set_num_threads(a.threads)
    model = Model(a)
    g = torch.Generator().manual_seed(a.seed + 1)
    prompts = torch.randint(4, a.vocab, (a.batch, a.prompt_len), generator=g)
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "linear": a.linear,
                      "blas": blas_library()}), flush=True)
    with torch.inference_mode():
        for line in sys.stdin:
            if line.strip() != "run":
                continue
            total, prefill, decode = generate(model, prompts, a.gen_len)
            print(json.dumps({"seconds": total, "prefill": prefill, "decode": decode}), flush=True)


if __name__ == "__main__":
    main()
