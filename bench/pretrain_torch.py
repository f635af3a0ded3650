"""PyTorch side of the pretraining-step benchmark (runs on the GPU machine).

One training step of masked-language-model pretraining at microbatch 256 x 128
(25% of sequences shorter, lengths uniform in [32, 128)), bf16 autocast,
fused AdamW, timed with CUDA events; tokens/s counts real (non-padding)
tokens. Models:
  hf-bert  Hugging Face BertForMaskedLM, bert-base, 15% masking, padded batch
  mosaic   MosaicBERT-base written here after the reference's PyTorch path
           (unpadded linears, ALiBi + padding bias in SDPA, GeGLU, post-LN,
           last layer and MLM head on masked tokens only), 30% masking
Prints one JSON line per model.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PEAK = 989e12


def make_batch(B, S, V, p, device, gen):
    lens = torch.full((B,), S, dtype=torch.long)
    short = torch.rand(B, generator=gen) < 0.25
    lens[short] = torch.randint(32, S, (int(short.sum()),), generator=gen)
    ids = torch.randint(1000, V - 100, (B, S), generator=gen)
    mask = torch.arange(S)[None, :] < lens[:, None]
    ids[~mask] = 0
    ids[:, 0] = 101
    labels = torch.full((B, S), -100, dtype=torch.long)
    m = (torch.rand(B, S, generator=gen) < p) & mask
    m[:, 0] = False
    labels[m] = ids[m]
    ids = ids.clone()
    ids[m] = 103
    return ids.to(device), mask.to(device), labels.to(device), int(lens.sum())


def alibi_slopes(n):
    def pow2(k):
        return [2 ** (-8 / k * (i + 1)) for i in range(k)]
    lower = 2 ** int(math.floor(math.log2(n)))
    if lower == n:
        return pow2(n)
    return pow2(lower) + pow2(2 * lower)[0::2][: n - lower]


class MosaicLayer(nn.Module):
    def __init__(self, C, NH, I):
        super().__init__()
        self.NH, self.I = NH, I
        self.Wqkv = nn.Linear(C, 3 * C)
        self.dense = nn.Linear(C, C)
        self.ln1 = nn.LayerNorm(C, eps=1e-12)
        self.gated = nn.Linear(C, 2 * I, bias=False)
        self.wo = nn.Linear(I, C)
        self.ln2 = nn.LayerNorm(C, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, h, idx, B, S, bias, subset=None):
        T, C = h.shape
        NH, HS = self.NH, C // self.NH
        qkv = self.Wqkv(h)
        padded = torch.zeros(B * S, 3 * C, dtype=qkv.dtype, device=qkv.device)
        padded[idx] = qkv
        q, k, v = padded.view(B, S, 3, NH, HS).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        a = a.permute(0, 2, 1, 3).reshape(B * S, C)[idx]
        if subset is not None:
            a, h = a[subset], h[subset]
        x = self.ln1(self.drop(self.dense(a)) + h)
        g = self.gated(x)
        y = F.gelu(g[:, : self.I]) * g[:, self.I:]
        return self.ln2(self.drop(self.wo(y)) + x)


class MosaicBert(nn.Module):
    def __init__(self, V=30528, C=768, L=12, NH=12, I=3072):
        super().__init__()
        self.word = nn.Embedding(V, C)
        self.tok = nn.Embedding(2, C)
        self.ln = nn.LayerNorm(C, eps=1e-12)
        self.layers = nn.ModuleList([MosaicLayer(C, NH, I) for _ in range(L)])
        self.transform = nn.Linear(C, C)
        self.tln = nn.LayerNorm(C, eps=1e-12)
        self.dbias = nn.Parameter(torch.zeros(V))
        self.register_buffer("slopes", torch.tensor(alibi_slopes(NH)))
        self.drop = nn.Dropout(0.1)

    def forward(self, ids, mask, labels):
        B, S = ids.shape
        flat = mask.view(-1)
        idx = flat.nonzero().squeeze(1)
        x = self.word(ids.view(-1)[idx]) + self.tok(torch.zeros_like(idx))
        h = self.drop(self.ln(x))
        pos = torch.arange(S, device=ids.device)
        alibi = -(pos[None, :] - pos[:, None]).abs()[None] * self.slopes[:, None, None]
        bias = alibi[None] + torch.where(mask, 0.0, -10000.0)[:, None, None, :]
        bias = bias.to(torch.bfloat16)
        lab = labels.view(-1)[idx]
        sel = (lab != -100).nonzero().squeeze(1)
        for i, layer in enumerate(self.layers):
            h = layer(h, idx, B, S, bias, subset=sel if i == len(self.layers) - 1 else None)
        t = self.tln(F.gelu(self.transform(h)))
        logits = t @ self.word.weight.t() + self.dbias
        return F.cross_entropy(logits.float(), lab[sel])


def bench(name, model, p, steps, compile_, device, gen, B=256, S=128):
    model = model.to(device)
    n_params = sum(q.numel() for q in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=1e-5, fused=True)
    batches = [make_batch(B, S, 30522, p, device, gen) for _ in range(4)]
    fwd = torch.compile(model) if compile_ else model

    def step(b):
        ids, mask, labels, _ = b
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if name == "hf-bert":
                loss = fwd(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
            else:
                loss = fwd(ids, mask, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(5):
        step(batches[i % 4])
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, toks = [], []
    for i in range(steps):
        b = batches[i % 4]
        start.record()
        step(b)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
        toks.append(b[3])
    times.sort()
    med = times[len(times) // 2]
    tps = sum(toks) / len(toks) / med
    return {"bench": "pretrain-step", "impl": "pytorch" + ("-compile" if compile_ else "-eager"), "model": name,
            "params": n_params, "step_ms": med * 1e3, "tokens_per_second": tps, "mfu": 6 * n_params * tps / PEAK}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="mosaic,hf-bert")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    for name in a.models.split(","):
        if name == "hf-bert":
            from transformers import BertConfig, BertForMaskedLM
            cfg = BertConfig(attn_implementation="sdpa")
            model, p = BertForMaskedLM(cfg), 0.15
        else:
            model, p = MosaicBert(), 0.30
        for c in ([False, True] if a.compile else [False]):
            t0 = time.time()
            r = bench(name, model, p, a.steps, c, "cuda", gen)
            r["wall_s"] = time.time() - t0
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
