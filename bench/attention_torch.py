"""PyTorch side of bench/attention.mjs: scaled_dot_product_attention on the padded
batch with the same sequence lengths.

  python3 bench/attention_torch.py lens.json   -> one JSON line on stdout

lens.json: {"cases": [{"name", "lens", "NH", "HS"}], "warmup", "iters", "repeats"}.
Per case it times, in bf16 on the padded (B, NH, S, HS) batch:
  - "sdpa_bias": SDPA with a float (B, NH, S, S) ALiBi + key-padding bias, the
    way MosaicBERT runs attention in PyTorch today (default backend choice);
  - "sdpa_<backend>": SDPA with no bias through cuDNN and flash, each forced;
    "sdpa_fastest" is the faster of the two.
Times are medians (ms) of fwd, bwd and fwd+bwd. FLOPs are counted by the caller
over real tokens only.
"""

import json
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch_timing import median_ms


def alibi_slopes(nh):
    # MosaicBERT / ALiBi: geometric slopes, closest power of two then interleaved.
    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(nh).is_integer():
        return pow2(nh)
    c = 2 ** math.floor(math.log2(nh))
    return pow2(c) + pow2(2 * c)[0::2][: nh - c]


def run_case(case, warmup, iters, repeats):
    lens = case["lens"]
    nh, hs = case["NH"], case["HS"]
    b, s = len(lens), max(lens)
    dev = "cuda"
    torch.manual_seed(0)
    q, k, v = (torch.randn(b, nh, s, hs, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    dout = torch.randn(b, nh, s, hs, device=dev, dtype=torch.bfloat16)
    lens_t = torch.tensor(lens, device=dev)
    pos = torch.arange(s, device=dev)
    key_pad = torch.where(pos[None, :] < lens_t[:, None], 0.0, -10000.0)  # (B, S)
    slopes = torch.tensor(alibi_slopes(nh), device=dev)
    alibi = -slopes[:, None, None] * (pos[None, :, None] - pos[None, None, :]).abs()  # (NH, S, S)
    bias = (alibi[None] + key_pad[:, None, None, :]).to(torch.bfloat16)  # (B, NH, S, S)
    scale = 1.0 / math.sqrt(hs)

    def measure(call):
        def fwd():
            with torch.no_grad():
                call()

        out = call()

        def bwd():
            torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)

        def both():
            o = call()
            torch.autograd.grad(o, (q, k, v), dout)

        return {
            "fwd": median_ms(fwd, warmup, iters, repeats),
            "bwd": median_ms(bwd, warmup, iters, repeats),
            "fwdbwd": median_ms(both, warmup, iters, repeats),
        }

    res = {"name": case["name"], "B": b, "S": s}
    res["sdpa_bias"] = measure(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale))
    best = None
    for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
        try:
            with sdpa_kernel([backend]):
                r = measure(lambda: F.scaled_dot_product_attention(q, k, v, scale=scale))
            res[f"sdpa_{name}"] = r
            if best is None or r["fwdbwd"] < best[1]["fwdbwd"]:
                best = (name, r)
        except Exception as e:  # a backend may refuse the shape
            res[f"sdpa_{name}"] = {"error": str(e).splitlines()[0][:200]}
    if best:
        res["sdpa_fastest"] = dict(best[1], backend=best[0])
    del q, k, v, dout, bias
    torch.cuda.empty_cache()
    return res


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    out = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(),
        "cases": [run_case(c, spec["warmup"], spec["iters"], spec["repeats"]) for c in spec["cases"]],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
