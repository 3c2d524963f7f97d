"""Trainer throughput against a plain-PyTorch model of the same architecture.

Measures, in one process and one run, training tokens/s (forward + backward + AdamW
step) of

- ``tl_bilinear.train.Trainer`` on a HookedTransformer (its fast SDPA forwards on),
- the same with the stock HookedTransformer forwards (``fast_attention=False``),
- a plain-PyTorch reference written below (nn.Linear layers, SDPA attention, rotary
  with adjacent pairs, RMS norm without gain, bilinear MLP, untied embeddings),

each in fp32 and with bf16 autocast, and prints the ratio to the reference (the bar:
>= 0.8x at the same precision) and the model-FLOPs utilisation against the 1024^3 GEMM
rates measured at the start of the same run (``machine.print_machine``: the CPU model and
ISA flags too), and which precision the trainer's ``"auto"`` picks here.

    python benchmarks/bench_train.py            # d_model 256, 4 layers, n_ctx 256, 4096 tok/step
    python benchmarks/bench_train.py --steps 3 --d-model 128 --n-layers 2   # quick
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from machine import print_machine

from tl_bilinear.train import TrainConfig, Trainer


class RMSNorm(nn.Module):
    """x / rms(x), no gain (the paper's norm)."""

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)


class Block(nn.Module):
    """Pre-norm attention + bilinear MLP block."""

    def __init__(self, d_model, n_heads, d_mlp, n_ctx):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.gate = nn.Linear(d_model, d_mlp, bias=False)
        self.lin = nn.Linear(d_model, d_mlp, bias=False)
        self.down = nn.Linear(d_mlp, d_model, bias=False)
        self.norm = RMSNorm()
        inv = 1.0 / (10000 ** (torch.arange(0, self.d_head, 2).float() / self.d_head))
        angles = torch.arange(n_ctx).float()[:, None] * inv[None]  # [pos, d_head/2]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def rotary(self, x):  # [batch, head, pos, d_head], adjacent pairs
        x1, x2 = x[..., 0::2], x[..., 1::2]
        cos, sin = self.cos[: x.shape[2]].to(x.dtype), self.sin[: x.shape[2]].to(x.dtype)
        return torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)

    def forward(self, x):
        b, p, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, p, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        z = F.scaled_dot_product_attention(self.rotary(q), self.rotary(k), v, is_causal=True)
        x = x + self.out(z.transpose(1, 2).reshape(b, p, d))
        h = self.norm(x)
        return x + self.down(self.gate(h) * self.lin(h))


class Reference(nn.Module):
    """The plain-PyTorch bilinear transformer."""

    def __init__(self, d_vocab, d_model, n_heads, n_layers, n_ctx):
        super().__init__()
        self.embed = nn.Embedding(d_vocab, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, 4 * d_model, n_ctx) for _ in range(n_layers))
        self.norm = RMSNorm()
        self.unembed = nn.Linear(d_model, d_vocab, bias=False)

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.norm(x))


class RandomBlocks:
    """Random token blocks with the stream interface the Trainer expects."""

    def __init__(self, d_vocab, n_ctx, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.d_vocab, self.n_ctx = d_vocab, n_ctx

    def batches(self, n):
        while True:
            yield torch.randint(0, self.d_vocab, (n, self.n_ctx), generator=self.gen)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def best_seconds(steps, fns, rounds):
    """Interleave the step functions round by round; the best mean step time of each.

    The 2 cores here are shared: interleaving and best-of keep the comparison fair.
    """
    for fn in fns:  # warm-up (allocations, first-touch)
        fn()
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / steps)
    return best


def make_trainer(args, precision, fast, out):
    """A Trainer on random token blocks."""
    cfg = TrainConfig(
        out_dir=out,
        preset="ts-small",
        total_tokens=10**9,
        batch_size=args.batch,
        progress=False,
        model_overrides=dict(d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads, n_ctx=args.n_ctx),
        precision=precision,
        fast_attention=fast,
        device="cpu",
    )
    return Trainer(cfg, stream_factory=lambda split, r, w: RandomBlocks(4096, args.n_ctx, 0))


def trainer_step(args, precision, fast, out):
    """A Trainer's ``train_step`` on random token blocks."""
    trainer = make_trainer(args, precision, fast, out)
    batches = trainer._batches()
    return lambda: trainer.train_step(batches)


def reference_step(args, precision):
    """The plain-PyTorch model's training step (same loss, clipping and AdamW)."""
    torch.manual_seed(0)
    model = Reference(4096, args.d_model, args.n_heads, args.n_layers, args.n_ctx)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    opt = torch.optim.AdamW(decay, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    stream = RandomBlocks(4096, args.n_ctx, 0).batches(args.batch)

    def step():
        tokens = next(stream)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decay, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def train_flops_per_token(n_params_matmul, n_layers, n_ctx, d_model):
    """6 N (weights, forward + backward) + 6 L n_ctx d_model (causal attention, halved)."""
    return 6 * n_params_matmul + 6 * n_layers * n_ctx * d_model


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--n-ctx", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16, help="sequences per step (16 x 256 = 4096 tokens)")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is kept")
    parser.add_argument("--skip-stock", action="store_true", help="skip the stock-HookedTransformer row")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tokens = args.batch * args.n_ctx
    d, L = args.d_model, args.n_layers
    n_matmul = L * (4 * d * d + 3 * d * 4 * d) + 4096 * d  # attention + bilinear MLP + unembed
    flops = train_flops_per_token(n_matmul, L, args.n_ctx, d)
    peaks = print_machine()["gemm_gflops"]
    print(f"shape: d_model {d}, {L} layers, n_ctx {args.n_ctx}, {tokens} tokens/step, {flops / 1e6:.1f} MFLOP/token")
    with tempfile.TemporaryDirectory() as out:
        auto = make_trainer(args, "auto", True, out)
        rates = "; ".join(m.describe() for m in auto.precision_rates)
        print(f"precision 'auto' picks {auto.precision} here ({rates})")
        del auto
    for precision in ("fp32", "bf16"):
        with tempfile.TemporaryDirectory() as out_fast, tempfile.TemporaryDirectory() as out_stock:
            fns = [reference_step(args, precision), trainer_step(args, precision, True, out_fast)]
            if not args.skip_stock:
                fns.append(trainer_step(args, precision, False, out_stock))
            times = best_seconds(args.steps, fns, args.rounds)
        peak = peaks[precision]
        print(f"\n[{precision}] (MFU against the {peak:,.0f} GFLOP/s GEMM rate above)")
        names = ["plain PyTorch reference", "Trainer (fast forwards)", "Trainer (stock HookedTransformer)"]
        for name, secs in zip(names, times):
            tok_s = tokens / secs
            mfu = tok_s * flops / 1e9 / peak
            print(f"  {name:36s} {tok_s:9,.0f} tok/s  {times[0] / secs:5.2f}x reference  MFU {mfu:6.1%}")
    print(f"load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
