"""Training throughput: the reference TransformerLM step against a plain compiled PyTorch peer.

Measures tokens/s and MFU of the optimizer step of ``reference/basics/train.py``: its
``train_step`` (bf16 autocast, the reference ``cross_entropy``, ``gradient_clipping`` and
``AdamW``), model and loss ``torch.compile``d as ``train()`` does. The peer has the same
architecture, starting weights and lr schedule, written the usual way: ``nn.Linear``,
``nn.RMSNorm``, ``F.scaled_dot_product_attention(is_causal=True)``, ``F.cross_entropy``,
``clip_grad_norm_``, ``torch.optim.AdamW(fused=True)``, one compiled module. Batches are random
ids already on the GPU (data loading is not timed). Shapes: ``small`` (vocab 10k, context 256,
d 512, 4 layers, 16 heads, d_ff 1344, batch 128) and ``gpt2`` (vocab 50257, context 1024, d 768,
12 layers, 12 heads, d_ff 3072, batch ``--gpt2-batch``). MFU: ``train.flops_per_token`` against
``train.PEAK_BF16_FLOPS``. tokens/s: median of ``--windows`` windows of ``--steps`` steps, after
``--warmup`` steps (compilation). Without a GPU: a tiny shape in fp32, for correctness only.
Needs torch and numpy only. The last line printed is one JSON object with all results.

    python benchmarks/train_gpu.py
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import import_reference, median

KEYS = ("vocab_size", "context_length", "d_model", "num_layers", "num_heads", "d_ff", "batch_size")
SHAPES = {
    "small": dict(zip(KEYS, (10_000, 256, 512, 4, 16, 1344, 128))),
    "gpt2": dict(zip(KEYS, (50_257, 1024, 768, 12, 12, 3072, 32))),  # GPT-2 small
    "tiny": dict(zip(KEYS, (512, 64, 64, 2, 4, 172, 4))),
}


def import_train_script() -> types.ModuleType:
    """``reference/basics/train.py``; yaml and safetensors (config files, export) are stubbed if absent."""
    for name in ("yaml", "safetensors", "safetensors.torch"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    sys.modules["safetensors.torch"].__dict__.setdefault("save_file", None)
    return import_reference("train")[0]


class Block(nn.Module):
    """Pre-norm block with RoPE attention and SwiGLU; parameter names match the reference's."""

    def __init__(self, d: int, heads: int, d_ff: int) -> None:
        super().__init__()
        self.heads, self.ln1, self.ln2 = heads, nn.RMSNorm(d, eps=1e-5), nn.RMSNorm(d, eps=1e-5)
        self.attn, self.ffn = nn.Module(), nn.Module()
        for name in ("q_proj", "k_proj", "v_proj", "output_proj"):
            setattr(self.attn, name, nn.Linear(d, d, bias=False))
        self.ffn.w1, self.ffn.w2, self.ffn.w3 = nn.Linear(d, d_ff, bias=False), nn.Linear(d_ff, d, bias=False), nn.Linear(d, d_ff, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.ln1(x)  # (batch, seq, d) -> q, k, v: (batch, heads, seq, d_k)
        q, k, v = (p(h).view(b, t, self.heads, -1).transpose(1, 2) for p in (self.attn.q_proj, self.attn.k_proj, self.attn.v_proj))
        y = F.scaled_dot_product_attention(rope(q, cos, sin), rope(k, cos, sin), v, is_causal=True)
        x = x + self.attn.output_proj(y.transpose(1, 2).reshape(b, t, d))
        h = self.ln2(x)
        return x + self.ffn.w2(F.silu(self.ffn.w1(h)) * self.ffn.w3(h))


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the adjacent pairs (x[2i], x[2i+1]), as the reference does."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2).to(x.dtype)


class PeerLM(nn.Module):
    def __init__(self, vocab_size, context_length, d_model, num_layers, num_heads, d_ff, rope_theta=10_000.0, **_):
        super().__init__()
        self.token_embeddings = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(Block(d_model, num_heads, d_ff) for _ in range(num_layers))
        self.ln_final = nn.RMSNorm(d_model, eps=1e-5)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        d_k = d_model // num_heads
        angles = torch.outer(torch.arange(context_length, dtype=torch.float64), rope_theta ** (-torch.arange(0, d_k, 2, dtype=torch.float64) / d_k))
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x, t = self.token_embeddings(idx), idx.shape[1]
        for layer in self.layers:
            x = layer(x, self.cos[:t], self.sin[:t])
        logits = self.lm_head(self.ln_final(x))
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())


def measure(step, batches, args, device) -> dict:
    """Warm up (compiling), then time ``--windows`` windows of ``--steps`` steps."""
    cuda = device.type == "cuda"
    torch.cuda.reset_peak_memory_stats() if cuda else None
    start = time.perf_counter()
    for i in range(args.warmup):
        loss = step(*batches[i % len(batches)])
    first_loss = loss.item()
    warmup_s, rates = time.perf_counter() - start, []
    tokens = batches[0][0].numel()
    for _ in range(args.windows):
        torch.cuda.synchronize() if cuda else None
        start = time.perf_counter()
        for i in range(args.steps):
            loss = step(*batches[i % len(batches)])
        last_loss = loss.item()  # waits for the GPU
        rates.append(args.steps * tokens / (time.perf_counter() - start))
    peak_gb = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    assert math.isfinite(last_loss), f"the loss diverged: {last_loss}"
    return {"tokens_per_s": median(rates), "windows_tokens_per_s": [round(r) for r in rates], "warmup_s": round(warmup_s, 1),
            "loss_after_warmup": round(first_loss, 4), "final_loss": round(last_loss, 4), "peak_mem_gb": peak_gb and round(peak_gb, 1)}


def bench_shape(name: str, shape: dict, args, device, train_mod) -> dict:
    torch._dynamo.reset()  # else the second shape would reuse the first's frames and compile them as dynamic
    cfg = train_mod.TrainConfig(train_data="(random tokens)", device=str(device), **shape)
    bf16, use_compile = device.type == "cuda", args.compile if args.compile is not None else device.type == "cuda"
    torch.manual_seed(0)
    ref = train_mod.build_model(cfg, device)
    peer = PeerLM(**shape).to(device)
    peer.load_state_dict(ref.state_dict())  # same weights: the losses must agree
    gen = torch.Generator(device=device).manual_seed(0)
    batches = [torch.randint(0, cfg.vocab_size, (2, cfg.batch_size, cfg.context_length), device=device, generator=gen) for _ in range(4)]
    with torch.no_grad():
        x, y = batches[0][0][:2], batches[0][1][:2]
        ref_loss, peer_loss = train_mod.cross_entropy(ref(x), y).item(), peer(x, y).item()
    assert abs(ref_loss - peer_loss) < 2e-2, f"{name}: initial losses differ: reference {ref_loss}, peer {peer_loss}"
    flops, peak = train_mod.flops_per_token(ref, cfg), train_mod.peak_flops(device) if bf16 else None
    result = {"shape": name, **shape, "compile": use_compile, "bf16": bf16, "flops_per_token": flops,
              "params": sum(p.numel() for p in ref.parameters()), "initial_loss": [round(ref_loss, 4), round(peer_loss, 4)]}

    schedule = {side: (train_mod.get_lr_cosine_schedule(i, cfg.max_lr, cfg.min_lr, cfg.warmup_steps, cfg.steps)
                       for i in range(10**9)) for side in ("reference", "peer")}  # the same lr, step by step
    step_model = torch.compile(ref) if use_compile else ref
    loss_fn = torch.compile(train_mod.cross_entropy) if use_compile else train_mod.cross_entropy
    optimizer = train_mod.build_optimizer(ref, cfg)

    def ref_step(x, y):  # the training loop's body
        return train_mod.train_step(step_model, loss_fn, optimizer, x, y, next(schedule["reference"]), cfg.grad_clip, bf16)

    result["reference"] = measure(ref_step, batches, args, device)
    optimizer.state.clear()  # free the reference's moments before the peer runs

    groups = [{"params": [p for p in peer.parameters() if p.dim() >= 2]},
              {"params": [p for p in peer.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    peer_opt = torch.optim.AdamW(groups, lr=cfg.max_lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, fused=device.type == "cuda")
    peer_model = torch.compile(peer) if use_compile else peer

    def peer_step(x, y):
        lr = next(schedule["peer"])
        for group in peer_opt.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = peer_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(peer.parameters(), cfg.grad_clip, foreach=True)
        peer_opt.step()
        peer_opt.zero_grad(set_to_none=True)
        return loss.detach()

    result["peer"] = measure(peer_step, batches, args, device)
    for side in ("reference", "peer"):
        result[side]["mfu"] = peak and round(result[side]["tokens_per_s"] * flops / peak, 4)
    if not bf16:  # fp32 from the same weights on the same batches: the same training run
        ref_final, peer_final = result["reference"]["final_loss"], result["peer"]["final_loss"]
        assert abs(ref_final - peer_final) < 1e-2, f"{name}: final losses differ: reference {ref_final}, peer {peer_final}"
    result["ratio_tokens_per_s"] = round(result["reference"]["tokens_per_s"] / result["peer"]["tokens_per_s"], 3)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", help="comma-separated, of: small, gpt2, tiny (default: small,gpt2; tiny without a GPU)")
    parser.add_argument("--gpt2-batch", type=int, default=32, help="batch size of the gpt2 shape (both models)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed window")
    parser.add_argument("--windows", type=int, default=3, help="timed windows; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="default: on a GPU only")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        print("NOTICE: no CUDA GPU. Running the tiny shape for correctness only: these numbers mean nothing.", flush=True)
    shapes = (args.shapes or ("small,gpt2" if device.type == "cuda" else "tiny")).split(",")
    train_mod = import_train_script()
    torch.set_float32_matmul_precision("high")  # as train() does
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else None
    start, results = time.perf_counter(), []
    for name in shapes:
        shape = dict(SHAPES[name], **({"batch_size": args.gpt2_batch} if name == "gpt2" else {}))
        while True:  # halve the batch on running out of memory
            try:
                r = bench_shape(name, shape, args, device, train_mod)
                break
            except torch.OutOfMemoryError:
                if shape["batch_size"] == 1:
                    raise
            print(f"{name}: out of memory at batch {shape['batch_size']}; retrying at half of it", flush=True)
            shape["batch_size"] //= 2
            torch.cuda.empty_cache()
        results.append(r)
        for side, s in ((side, r[side]) for side in ("reference", "peer")):
            mfu = f"{s['mfu']:.1%}" if s["mfu"] is not None else "n/a"
            print(f"{name:>5} {side:>9}: {s['tokens_per_s']:>12,.0f} tokens/s  MFU {mfu}  warm-up {s['warmup_s']}s  "
                  f"peak {s['peak_mem_gb']} GB  loss {s['loss_after_warmup']} -> {s['final_loss']}", flush=True)
        elapsed = time.perf_counter() - start
        print(f"{name:>5} reference / peer = {r['ratio_tokens_per_s']:.2f}  ({elapsed:.0f} s so far)", flush=True)
    print(json.dumps({"benchmark": "train_gpu", "device": gpu or "cpu", "torch": torch.__version__,
                      "elapsed_s": round(time.perf_counter() - start, 1), "results": results}))


if __name__ == "__main__":
    main()
