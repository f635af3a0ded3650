"""Writes parity fixture case folders (the layout of ../shared/fixtures) from
the PyTorch references, for sizes the shared fixtures do not cover: long
sequences, head counts that are not powers of two, other widths.

Runs on the GPU machine (it has torch and transformers); computes in float64
on the CPU after rounding every weight to float32, like the shared fixtures.
Classic BERT comes from transformers (eager attention); MosaicBERT from the
reference `bert_layers.py` of mosaicml/examples, whose folder is given with
--reference (the file is carried, not part of this repository).

usage: python3 make_fixture.py --out DIR --family bert|mosaic --head mlm|cls
         [--num-labels N] [--vocab V] [--hidden C] [--layers L] [--heads NH]
         [--inter I] [--lens 512,300,77] [--seed S] [--reference DIR]
"""
import argparse
import json
import os
import sys
import types

import torch


def einops_stand_in():
    """The four reshapes the reference uses, for machines without einops."""
    mod = types.ModuleType("einops")

    def rearrange(x, pattern, **sizes):
        p = pattern.replace(" ", "")
        if p == "b...->b(...)":
            return x.reshape(x.shape[0], -1)
        if p == "bs...->(bs)...":
            return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
        if p == "(bs)...->bs...":
            return x.reshape(sizes["b"], -1, *x.shape[1:])
        if p == "(bs)d->bsd":
            return x.reshape(sizes["b"], -1, x.shape[-1])
        if p == "bs(thd)->bsthd":
            return x.reshape(x.shape[0], x.shape[1], sizes["t"], sizes["h"], -1)
        if p == "nnzhd->nnz(hd)":
            return x.reshape(x.shape[0], -1)
        raise NotImplementedError(pattern)

    def repeat(x, pattern, **sizes):
        if pattern.replace(" ", "") == "z->zd":
            return x.unsqueeze(1).expand(-1, sizes["d"])
        raise NotImplementedError(pattern)

    mod.rearrange = rearrange
    mod.repeat = repeat
    return mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--family", choices=["bert", "mosaic"], required=True)
    ap.add_argument("--head", choices=["mlm", "cls"], required=True)
    ap.add_argument("--num-labels", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--inter", type=int, default=192)
    ap.add_argument("--lens", default="512,300,77")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", default=None)
    a = ap.parse_args()

    from safetensors.torch import save_file
    from transformers import BertConfig

    torch.manual_seed(a.seed)
    lens = [int(x) for x in a.lens.split(",")]
    B, S = len(lens), max(lens)
    cfg = BertConfig(
        vocab_size=a.vocab,
        hidden_size=a.hidden,
        num_hidden_layers=a.layers,
        num_attention_heads=a.heads,
        intermediate_size=a.inter,
        max_position_embeddings=max(S, 64),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-12,
        num_labels=a.num_labels,
    )
    if a.head == "cls" and a.num_labels == 1:
        cfg.problem_type = "regression"
    if a.family == "mosaic":
        cfg.alibi_starting_size = 512
        if "einops" not in sys.modules:
            try:
                import einops  # noqa: F401
            except ImportError:
                sys.modules["einops"] = einops_stand_in()
        sys.path.insert(0, a.reference)
        import bert_layers as ref

        model = ref.BertForMaskedLM(cfg) if a.head == "mlm" else ref.BertForSequenceClassification(cfg)
    else:
        from transformers import BertForMaskedLM, BertForSequenceClassification

        cfg._attn_implementation = "eager"
        model = BertForMaskedLM(cfg) if a.head == "mlm" else BertForSequenceClassification(cfg)
    model.eval()

    # Every parameter matters: LayerNorm weights and biases away from 1/0; all rounded to float32.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif "LayerNorm" in name or "layernorm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            p.copy_(p.float())
    model.double()

    ids = torch.randint(1, a.vocab, (B, S))
    mask = torch.zeros(B, S, dtype=torch.long)
    tt = torch.zeros(B, S, dtype=torch.long)
    for b, n in enumerate(lens):
        mask[b, :n] = 1
        tt[b, n // 2 : n] = 1
    ids = ids * mask
    tt = tt * mask
    if a.head == "mlm":
        chosen = (torch.rand(B, S) < 0.15) & (mask == 1)
        chosen[:, 0] = False
        labels = torch.where(chosen, torch.randint(1, a.vocab, (B, S)), torch.full((B, S), -100))
    elif a.num_labels == 1:
        labels = torch.randn(B, dtype=torch.float64)
    else:
        labels = torch.randint(0, a.num_labels, (B,))

    def run(with_labels):
        kw = dict(input_ids=ids, attention_mask=mask, token_type_ids=tt, return_dict=False)
        if with_labels:
            kw["labels"] = labels
        return model(**kw)

    with torch.no_grad():
        logits = run(False)[0]
        enc = model.bert(ids, attention_mask=mask, token_type_ids=tt, return_dict=False)
        hidden = enc[0]
        if isinstance(hidden, list):
            hidden = hidden[-1]
        hidden = hidden * mask.unsqueeze(-1)
        if a.head == "mlm":
            logits = logits * mask.unsqueeze(-1)
    model.zero_grad()
    loss = run(True)[0]
    loss.backward()
    names = [n for n, _ in model.named_parameters()]
    grads = {f"grad.{n}": p.grad.float().contiguous() for n, p in model.named_parameters()}

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    weights = {n: p.detach().float().clone().contiguous() for n, p in model.named_parameters()}
    losses = []
    for _ in range(8):
        opt.zero_grad()
        l = run(True)[0]
        losses.append(l.item())
        l.backward()
        opt.step()

    os.makedirs(a.out, exist_ok=True)
    save_file(weights, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    io = {
        "input_ids": ids.int(),
        "attention_mask": mask.int(),
        "token_type_ids": tt.int(),
        "labels": labels.float() if labels.dtype == torch.float64 else labels.int(),
        "logits": logits.float().contiguous(),
        "last_hidden_state": hidden.float().contiguous(),
        "loss": loss.detach().float().reshape(1),
        **grads,
    }
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(a.out, "io.safetensors"))
    cfg_dict = cfg.to_dict()
    cfg_dict.pop("_attn_implementation", None)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg_dict, f, indent=2, sort_keys=True)
    name = os.path.basename(os.path.normpath(a.out))
    meta = {
        "case": {"name": name, "family": a.family, "head": a.head, "num_labels": a.num_labels, "vocab": a.vocab,
                 "hidden": a.hidden, "layers": a.layers, "heads": a.heads, "inter": a.inter, "B": B, "S": S,
                 "lens": lens, "seed": a.seed},
        "torch": torch.__version__,
        "precision": "float64 on CPU, stored as float32",
        "grad_params": names,
        "adamw": {"lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 0.01, "steps": 8},
        "adamw_losses": losses,
    }
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"wrote {a.out}: loss {loss.item():.6f}, {len(names)} parameters")


if __name__ == "__main__":
    main()
