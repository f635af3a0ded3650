"""PyTorch side of bench/kernels.mjs: the same shapes and case names, timed the
same way (CUDA events around ITERS calls, median of REPEATS, after warm-up).
Prints one JSON line {case name: ms, "_info": {...}} on stdout.

Usage: python3 bench/kernels_torch.py '{"T":32768,"C":768,"I":3072,"V":30528,"R":9830,"NADAM":137000000,"REPEATS":15,"ITERS":5}'
"""

import json
import sys

import torch
import torch.nn.functional as F
from torch_timing import median_ms


def main() -> None:
    cfg = json.loads(sys.argv[1])
    T, C, I, V, R = cfg["T"], cfg["C"], cfg["I"], cfg["V"], cfg["R"]
    repeats, iters = cfg["REPEATS"], cfg["ITERS"]
    dev = torch.device("cuda")
    bf = torch.bfloat16
    torch.backends.cuda.matmul.allow_tf32 = False
    out = {}

    def time(fn):
        return median_ms(fn, 3, iters, repeats)

    with torch.no_grad():
        for name, n_out, n_in in [("Wqkv", 3 * C, C), ("attn_out", C, C), ("gated_layers", 2 * I, C), ("wo", C, I)]:
            x = torch.randn(T, n_in, device=dev, dtype=bf)
            w = torch.randn(n_out, n_in, device=dev, dtype=bf) * 0.02
            dy = torch.randn(T, n_out, device=dev, dtype=bf)
            out[f"{name}.fwd"] = time(lambda: torch.matmul(x, w.t()))
            bias = torch.randn(n_out, device=dev, dtype=bf) * 0.1
            out[f"{name}.fwd+bias"] = time(lambda: F.linear(x, w, bias))
            out[f"{name}.dX"] = time(lambda: torch.matmul(dy, w))
            out[f"{name}.dW"] = time(lambda: torch.matmul(dy.t(), x))
            # fp32 accumulation of a bf16 product has no single torch.matmul call;
            # the closest is the bf16 product itself.
            out[f"{name}.dW+=f32"] = out[f"{name}.dW"]
            del x, w, dy

        x = torch.randn(T, C, device=dev, dtype=bf)
        res = torch.randn(T, C, device=dev, dtype=bf)
        w = torch.randn(C, device=dev, dtype=bf) * 0.1
        b = torch.randn(C, device=dev, dtype=bf) * 0.1
        out["layernorm.fwd"] = time(lambda: F.layer_norm(x, (C,), w, b, 1e-12))
        out["layernorm.fwd+res"] = time(lambda: F.layer_norm(x + res, (C,), w, b, 1e-12))
        out["layernorm.fwd+res+dropout"] = time(lambda: F.layer_norm(F.dropout(x, 0.1) + res, (C,), w, b, 1e-12))
        _, mean, rstd = torch.ops.aten.native_layer_norm(x, [C], w, b, 1e-12)
        dy = torch.randn(T, C, device=dev, dtype=bf)
        out["layernorm.bwd"] = time(
            lambda: torch.ops.aten.native_layer_norm_backward(dy, x, [C], mean, rstd, w, b, [True, True, True])
        )
        keep = torch.rand(T, C, device=dev) > 0.1

        def bwd_and_dropout():
            dx = torch.ops.aten.native_layer_norm_backward(dy, x, [C], mean, rstd, w, b, [True, True, True])[0]
            return torch.ops.aten.native_dropout_backward(dx, keep, 1 / 0.9)

        out["layernorm.bwd+dropout"] = time(bwd_and_dropout)
        del x, res, dy

        x = torch.randn(T, 2 * I, device=dev, dtype=bf)
        out["geglu.fwd"] = time(lambda: F.gelu(x[:, :I]) * x[:, I:])
        dyg = torch.randn(T, I, device=dev, dtype=bf)

    # GeGLU backward through autograd (what a PyTorch user runs).
    xg = x.detach().requires_grad_(True)
    yg = F.gelu(xg[:, :I]) * xg[:, I:]

    def geglu_bwd():
        torch.autograd.grad(yg, xg, dyg, retain_graph=True)

    out["geglu.bwd"] = time(geglu_bwd)
    del xg, yg, x, dyg

    logits = (torch.randn(R, V, device=dev, dtype=bf) * 2).requires_grad_(True)
    labels = torch.randint(0, V, (R,), device=dev)
    with torch.no_grad():
        out["cross_entropy.fwd"] = time(lambda: F.cross_entropy(logits, labels))
    loss = F.cross_entropy(logits, labels)
    out["cross_entropy.bwd"] = time(lambda: torch.autograd.grad(loss, logits, retain_graph=True))
    del logits, loss

    with torch.no_grad():
        table = torch.randn(V, C, device=dev, dtype=bf)
        ids = torch.randint(0, V, (T,), device=dev)
        out["embedding.fwd"] = time(lambda: F.embedding(ids, table))
        g = torch.randn(T, C, device=dev, dtype=bf)
        out["embedding.bwd"] = time(lambda: torch.ops.aten.embedding_dense_backward(g, ids, V, -1, False))
        tt = torch.zeros(T, device=dev, dtype=torch.long)
        out["embedding.bwd(2 rows)"] = time(lambda: torch.ops.aten.embedding_dense_backward(g, tt, 2, -1, False))
        del table, g

    n = cfg["NADAM"]
    p = torch.nn.Parameter(torch.randn(n, device=dev) * 0.02)
    p.grad = torch.randn(n, device=dev) * 1e-3
    opt = torch.optim.AdamW([p], lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=1e-5, fused=True)
    copy = torch.empty(n, device=dev, dtype=bf)
    out["adamw(137M)"] = time(opt.step)

    def step_and_copy():
        opt.step()
        with torch.no_grad():
            copy.copy_(p)

    out["adamw(137M)+bf16copy"] = time(step_and_copy)
    del p, opt, copy

    sizes = cfg["BASE_TENSORS"]
    ps = [torch.nn.Parameter(torch.randn(n, device=dev) * 0.02) for n in sizes]
    for q in ps:
        q.grad = torch.randn_like(q) * 1e-3
    opt = torch.optim.AdamW(ps, lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=1e-5, fused=True)
    copies = [torch.empty(n, device=dev, dtype=bf) for n in sizes]

    def list_step_and_copy():
        opt.step()
        with torch.no_grad():
            torch._foreach_copy_(copies, ps)

    out[f"adamwList({len(sizes)} tensors)+bf16copy"] = time(list_step_and_copy)
    del ps, opt, copies

    a = torch.empty(1 << 28, device=dev, dtype=torch.float32).fill_(1.5)
    bb = torch.empty_like(a)
    out["copy 1 GiB (ceiling)"] = time(lambda: bb.copy_(a))
    out["_info"] = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
