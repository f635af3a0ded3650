"""CUDA-event timing shared by the PyTorch side of the benchmarks."""

import statistics

import torch


def median_ms(fn, warmup, iters, repeats):
    """Median over `repeats` of the mean ms per call of `iters` back-to-back calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters):
            fn()
        b.record()
        b.synchronize()
        samples.append(a.elapsed_time(b) / iters)
    return statistics.median(samples)
