"""PyTorch itself on the parity fixtures: float32, and bfloat16 autocast on the GPU.

The yardstick for the bf16 tolerances of `parity.ts`: it reports, per case, the
same relative errors (||ours - ref|| / ||ref|| over the whole tensor) for PyTorch
running the reference models in float32 (which must land near 1e-6, checking this
script) and under `torch.autocast("cuda", torch.bfloat16)`, the mixed precision
PyTorch users train with.

Hugging Face cases run `transformers`' own BertForMaskedLM /
BertForSequenceClassification (eager attention). MosaicBERT cases run a functional
copy of the reference's PyTorch path written here: word + token-type embeddings,
Wqkv attention with an ALiBi bias and a -10000 padding mask, GeGLU MLP (GELU on the
first half of gated_layers), pooler + classifier or the tied MLM head.

Usage (on the GPU machine): python3 packages/model/gpu/torch_bf16_parity.py FIXTURES [OUT.json]
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def alibi_slopes(n):
    def pow2(k):
        start = 2.0 ** (-8.0 / k)
        return [start ** (i + 1) for i in range(k)]

    if math.log2(n).is_integer():
        return pow2(n)
    lower = 2 ** math.floor(math.log2(n))
    return pow2(lower) + pow2(2 * lower)[0::2][: n - lower]


def mosaic_forward(p, cfg, io, head, num_labels):
    ids = io["input_ids"].long()
    tt = io["token_type_ids"].long()
    mask = io["attention_mask"]
    B, S = ids.shape
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    HS, I, eps = C // NH, cfg["intermediate_size"], cfg["layer_norm_eps"]
    pre = "bert."
    h = F.embedding(ids, p[pre + "embeddings.word_embeddings.weight"]) + F.embedding(
        tt, p[pre + "embeddings.token_type_embeddings.weight"]
    )
    h = F.layer_norm(h, (C,), p[pre + "embeddings.LayerNorm.weight"], p[pre + "embeddings.LayerNorm.bias"], eps)
    pos = torch.arange(S, device=ids.device)
    dist = (pos[None, :] - pos[:, None]).abs().float()
    slopes = torch.tensor(alibi_slopes(NH), device=ids.device)
    bias = -slopes[:, None, None] * dist[None]  # (NH, S, S)
    bias = bias[None] + (1.0 - mask[:, None, None, :].float()) * -10000.0  # (B, NH, S, S)
    for layer in range(cfg["num_hidden_layers"]):
        L = f"{pre}encoder.layer.{layer}."
        qkv = F.linear(h, p[L + "attention.self.Wqkv.weight"], p[L + "attention.self.Wqkv.bias"])
        qkv = qkv.view(B, S, 3, NH, HS).permute(2, 0, 3, 1, 4)  # (3, B, NH, S, HS)
        scores = torch.matmul(qkv[0], qkv[1].transpose(-1, -2)) / math.sqrt(HS) + bias
        ctx = torch.matmul(torch.softmax(scores.float(), dim=-1).to(qkv.dtype), qkv[2])
        ctx = ctx.permute(0, 2, 1, 3).reshape(B, S, C)
        a = F.linear(ctx, p[L + "attention.output.dense.weight"], p[L + "attention.output.dense.bias"])
        h = F.layer_norm(
            a + h, (C,), p[L + "attention.output.LayerNorm.weight"], p[L + "attention.output.LayerNorm.bias"], eps
        )
        g = F.linear(h, p[L + "mlp.gated_layers.weight"])
        m = F.linear(F.gelu(g[..., :I]) * g[..., I:], p[L + "mlp.wo.weight"], p[L + "mlp.wo.bias"])
        h = F.layer_norm(m + h, (C,), p[L + "mlp.layernorm.weight"], p[L + "mlp.layernorm.bias"], eps)
    if head == "cls":
        pooled = torch.tanh(F.linear(h[:, 0], p[pre + "pooler.dense.weight"], p[pre + "pooler.dense.bias"]))
        logits = F.linear(pooled, p["classifier.weight"], p["classifier.bias"])
        labels = io["labels"]
        if num_labels == 1:
            loss = F.mse_loss(logits.float().squeeze(-1), labels.float())
        else:
            loss = F.cross_entropy(logits.float(), labels.long())
        return logits, h, loss
    t = F.gelu(F.linear(h, p["cls.predictions.transform.dense.weight"], p["cls.predictions.transform.dense.bias"]))
    t = F.layer_norm(
        t, (C,), p["cls.predictions.transform.LayerNorm.weight"], p["cls.predictions.transform.LayerNorm.bias"], eps
    )
    logits = F.linear(t, p[pre + "embeddings.word_embeddings.weight"], p["cls.predictions.decoder.bias"])
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), io["labels"].long().reshape(-1), ignore_index=-100)
    return logits, h, loss


def hf_model(case_dir, head, device):
    from transformers import BertForMaskedLM, BertForSequenceClassification

    cls = BertForSequenceClassification if head == "cls" else BertForMaskedLM
    model = cls.from_pretrained(case_dir, attn_implementation="eager").to(device)
    model.train()
    return model


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def run(case_dir, device, dtype):
    meta = json.load(open(os.path.join(case_dir, "meta.json")))["case"]
    cfg = json.load(open(os.path.join(case_dir, "config.json")))
    io = {k: v.to(device) for k, v in load_file(os.path.join(case_dir, "io.safetensors")).items()}
    head, family, num_labels = meta["head"], meta["family"], meta.get("num_labels", 0)
    mask = io["attention_mask"].bool()
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if dtype == "bfloat16" else torch.autocast("cuda", enabled=False)
    if family == "mosaic":
        p = {k: v.to(device).requires_grad_(True) for k, v in load_file(os.path.join(case_dir, "model.safetensors")).items()}
        with ctx:
            logits, hidden, loss = mosaic_forward(p, cfg, io, head, num_labels)
        loss.backward()
        grads = {k: v.grad for k, v in p.items()}
    else:
        model = hf_model(case_dir, head, device)
        kw = dict(input_ids=io["input_ids"].long(), attention_mask=io["attention_mask"].long(),
                  token_type_ids=io["token_type_ids"].long(), output_hidden_states=True)
        labels = io["labels"].float() if num_labels == 1 else io["labels"].long()
        with ctx:
            out = model(**kw, labels=labels)
        out.loss.backward()
        logits, hidden, loss = out.logits, out.hidden_states[-1], out.loss
        grads = {k: v.grad for k, v in model.named_parameters() if v.grad is not None}
    if head == "cls":
        lerr = rel(logits.float(), io["logits"])
    else:  # MLM logits: real positions only (the reference's padded rows are zero)
        lerr = rel(logits.float()[mask], io["logits"][mask])
    herr = rel(hidden.float()[mask], io["last_hidden_state"][mask])
    # As parity.ts: a gradient that is zero in exact arithmetic (the attention key
    # bias) holds only float64 round-off in the reference; tensors with a norm under
    # 1e-8 of the whole gradient's are measured against the whole gradient's norm.
    refs = {k: io["grad." + k] for k in grads if "grad." + k in io and grads[k] is not None}
    total = math.sqrt(sum(float(r.double().norm()) ** 2 for r in refs.values()))
    gerrs = {}
    for k, r in refs.items():
        g = grads[k].detach().float()
        if float(r.double().norm()) < 1e-8 * total:
            gerrs[k] = float((g.double() - r.double()).norm()) / total
        else:
            gerrs[k] = rel(g, r)
    worst = max(gerrs, key=gerrs.get)
    return {
        "case": os.path.basename(case_dir),
        "impl": "torch",
        "dtype": dtype,
        "logits_rel_err": lerr,
        "hidden_rel_err": herr,
        "loss_abs_err": abs(float(loss.detach()) - float(io["loss"][0])),
        "grad_max_rel_err": gerrs[worst],
        "grad_worst": worst,
        "grads_compared": len(gerrs),
    }


def main():
    root = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else None
    device = "cuda"
    results = []
    for name in sorted(os.listdir(root)):
        case_dir = os.path.join(root, name)
        if not os.path.isfile(os.path.join(case_dir, "meta.json")):
            continue
        for dtype in ("float32", "bfloat16"):
            r = run(case_dir, device, dtype)
            results.append(r)
            print(json.dumps(r), flush=True)
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
