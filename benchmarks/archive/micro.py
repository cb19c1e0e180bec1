"""Microbenchmarks behind the choices in scratch_ae/optimizers/fused.py (see RESULTS.md).

    python benchmarks/micro.py optimizer   # one Adam step: reference, fused (NumPy, Numba), torch.optim.Adam (default, fused)
    python benchmarks/micro.py blocks      # the fused NumPy update's time against its block size
    python benchmarks/micro.py gemm        # each matrix product of a training step: NumPy vs torch
    python benchmarks/micro.py adam-loop   # the compiled Adam loop: bound by its arithmetic or by memory?

Thread counts come from --threads (default: the usable cores), set for OpenBLAS,
MKL, OpenMP and Numba before NumPy or torch is imported.  Medians of --repeats calls
after one untimed call, in milliseconds (GFLOP/s for gemm).  Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETWORKS = {"standard": ([784, 256], 100), "deep": ([784, 1000, 500, 250, 30], 256)}


def median_ms(f, repeats):
    import numpy as np
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def layer_widths(sizes):
    """(fan_in, fan_out) of each Dense layer of the encoder `sizes` and its mirror decoder."""
    widths = sizes + sizes[-2::-1]
    return list(zip(widths[:-1], widths[1:]))


def shapes_of(sizes):
    out = {}
    for i, (a, b) in enumerate(layer_widths(sizes)):
        out[f"layers.{i}.W"], out[f"layers.{i}.b"] = (a, b), (b,)
    return out


def optimizer(args):
    import numpy as np
    import torch
    from scratch_ae.optimizers import Adam, fused
    from scratch_ae.jit import numba_unavailable_reason
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    result = {}
    for net, (sizes, _) in NETWORKS.items():
        shapes = shapes_of(sizes)
        P = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        G = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        reference = Adam(1e-3)
        row = {"scratch-ae reference": median_ms(lambda: reference.step(P, G), args.repeats)}
        for kernel in ("numpy", "numba"):  # the fused update on its NumPy blocks, then compiled
            if kernel == "numba" and numba_unavailable_reason():
                continue
            fused.CPU_KERNEL = kernel
            opt = Adam(1e-3, fused=True)
            row[f"scratch-ae fused ({kernel})"] = median_ms(lambda: opt.step(P, G), args.repeats)
        tp = [torch.nn.Parameter(torch.from_numpy(P[k].copy())) for k in shapes]
        for p, k in zip(tp, shapes):
            p.grad = torch.from_numpy(G[k])
        row["torch.optim.Adam"] = median_ms(torch.optim.Adam(tp, lr=1e-3).step, args.repeats)
        row["torch.optim.Adam(fused=True)"] = median_ms(torch.optim.Adam(tp, lr=1e-3, fused=True).step, args.repeats)
        result[net] = {"parameters": sum(int(np.prod(s)) for s in shapes.values()), "ms_per_step": row}
    return result


def blocks(args):
    import numpy as np
    from scratch_ae.optimizers import fused
    fused.CPU_KERNEL = "numpy"  # the blocks are the NumPy path's
    rng = np.random.default_rng(0)
    result = {}
    for n in (200704, 784000, 2833000):
        arrays = [rng.standard_normal(n).astype(np.float32) for _ in range(2)] + [np.zeros(n, np.float32), np.ones(n, np.float32)]
        row = {}
        for kib in (16, 64, 256, 1024, 4096):
            fused.BLOCK_BYTES = kib * 1024
            row[f"{kib} KiB"] = median_ms(lambda: fused.adam_fused_update(*arrays, 1e-3, 0.9, 0.999, 1e-8, 3), args.repeats)
        result[f"{n} parameters"] = row
    return result


def gemm(args):
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    result = {}
    for net, (sizes, batch) in NETWORKS.items():
        rows, total = [], {"numpy": 0.0, "torch": 0.0}
        for i, (a, b) in enumerate(layer_widths(sizes)):
            x = rng.standard_normal((batch, a)).astype(np.float32)
            W = rng.standard_normal((a, b)).astype(np.float32)
            g = rng.standard_normal((batch, b)).astype(np.float32)
            gW = np.empty_like(W)
            xt, gt = torch.from_numpy(x), torch.from_numpy(g)
            Wt = torch.from_numpy(np.ascontiguousarray(W.T))  # nn.Linear keeps (out, in)
            products = {"forward": (lambda: x @ W, lambda: torch.nn.functional.linear(xt, Wt)),
                        "grad_W": (lambda: np.matmul(x.T, g, out=gW), lambda: gt.t().mm(xt))}
            if i > 0:
                products["grad_x"] = (lambda: g @ W.T, lambda: gt.mm(Wt))
            flops = 2 * batch * a * b
            row = {"layer": f"{a}x{b}"}
            for name, (f_np, f_torch) in products.items():
                t_np, t_torch = median_ms(f_np, args.repeats), median_ms(f_torch, args.repeats)
                total["numpy"] += t_np
                total["torch"] += t_torch
                row[name] = {"numpy_gflops": flops / t_np / 1e6, "torch_gflops": flops / t_torch / 1e6}
            rows.append(row)
        result[net] = {"batch": batch, "layers": rows, "ms_per_step": total}
    return result


def _traffic_loop(p, g, m, v):
    """The Adam loop's memory traffic (read p, g, m, v; write p, m, v) with one add each."""
    for i in range(p.shape[0]):
        gi = g[i]
        p[i] = p[i] + gi
        m[i] = m[i] + gi
        v[i] = v[i] + gi


def adam_loop(args):
    """Nanoseconds per element of the compiled Adam loop (the reference's order: three divisions
    and a square root), the reordered loop (one division, one root; step_variants.py), and a loop
    with the same memory traffic and no arithmetic to speak of, on the deep network's 2,833,000
    parameters (out of cache) and on 60,000 (in L2).  If the library's loop takes as long in
    cache as out of it, its arithmetic, not memory, is what bounds it."""
    import numpy as np
    from scratch_ae.jit import CompiledLoop
    from scratch_ae.optimizers.fused_cpu import ADAM_LOOP
    from step_variants import _reordered_adam_loop
    f = np.float32
    adam_scalars = tuple(f(x) for x in (1e-3, 0.9, 0.1, 0.999, 0.001, 1e-8, 0.1, 0.001, 1.0))
    loops = {"library (reference order)": (ADAM_LOOP, adam_scalars),
             "reordered": (CompiledLoop(_reordered_adam_loop), tuple(f(x) for x in (1e-3, 0.9, 0.1, 0.999, 0.001, 1e-8))),
             "memory traffic only": (CompiledLoop(_traffic_loop), ())}
    result = {}
    for n in (2_833_000, 60_000):
        rng = np.random.default_rng(0)
        p, g, m = (rng.standard_normal(n).astype(f) for _ in range(3))
        v = np.abs(rng.standard_normal(n)).astype(f)
        calls = max(1, 2_833_000 // n)  # about 2.8 million elements a timed call
        row = {}
        for name, (loop, scalars) in loops.items():
            def run():
                for _ in range(calls):
                    loop(p, g, m, v, *scalars)
            row[name] = median_ms(run, args.repeats) * 1e6 / (calls * n)
        result[f"{n} elements, ns per element"] = row
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["optimizer", "blocks", "gemm", "adam-loop"])
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path[:0] = [str(HERE.parent)]
    result = {"optimizer": optimizer, "blocks": blocks, "gemm": gemm, "adam-loop": adam_loop}[args.what](args)
    print(json.dumps({"what": args.what, "threads": args.threads, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                      "load_average": os.getloadavg(), "result": result}, indent=1))


if __name__ == "__main__":
    main()
