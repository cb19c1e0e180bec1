"""Per-layer times of one scratch-ae training step of a bench_conv.py network, variants interleaved.

    python benchmarks/bench_conv_layers.py                                  # pooled, the library's settings
    python benchmarks/bench_conv_layers.py --variants library,cached-cols-16MiB --threads 1

Each variant (bench_conv.VARIANTS: the layers' module-level knobs) trains its own copy of the
network from the same seed on the same batches (real data, as bench_conv.py prepares it); the
variants take turns, --chunk steps each, for --rounds rounds, in one process, so the machine's
slow spells hit them alike.  Every layer's forward and backward, the loss and the Adam step are
timed on their own (perf_counter around each call); printed per variant: the median of each
over the timed steps, their sum, and the median whole step.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_conv  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", default="pooled", choices=sorted(bench_conv.NETWORKS))
    p.add_argument("--variants", default="library", help=f"comma-separated: {', '.join(bench_conv.VARIANTS)}")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunk", type=int, default=5)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default="/tmp/bench-conv-data")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    bench_conv.set_threads(args.threads)
    from scratch_ae.layers import im2col as im2col_module
    from scratch_ae.optimizers import Adam
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    batch = bench_conv.NETWORKS[args.network]["batch"]
    X = np.load(bench_conv.prepare_data(args.network, args.seed, 40, args.data_dir))
    n_batches = X.shape[0] // batch
    names = args.variants.split(",")
    defaults = {k: getattr(im2col_module, k) for v in names for k in bench_conv.VARIANTS[v]}
    models = {v: (bench_conv.build_scratch(args.network, args.seed), Adam(bench_conv.LR, fused=True)) for v in names}
    times = {v: {} for v in names}
    position = {v: 0 for v in names}

    def record(v, key, seconds, timed):
        if timed:
            times[v].setdefault(key, []).append(seconds)

    def run(v, steps, timed):
        for k, value in defaults.items():
            setattr(im2col_module, k, bench_conv.VARIANTS[v].get(k, value))
        layers, opt = models[v]
        for _ in range(steps):
            s = position[v] % n_batches
            position[v] += 1
            xb = X[s * batch:(s + 1) * batch]
            t_step = time.perf_counter()
            h = xb
            for i, layer in enumerate(layers):
                t0 = time.perf_counter()
                h = layer.forward(h)
                record(v, f"{i:2d} {type(layer).__name__} fwd", time.perf_counter() - t0, timed)
            t0 = time.perf_counter()
            diff = h - xb
            np.mean(diff * diff)
            g = (np.float32(2.0) / np.float32(diff.size)) * diff
            record(v, "   loss", time.perf_counter() - t0, timed)
            for i in reversed(range(len(layers))):
                t0 = time.perf_counter()
                g = layers[i].backward(g)
                record(v, f"{i:2d} {type(layers[i]).__name__} bwd", time.perf_counter() - t0, timed)
            t0 = time.perf_counter()
            opt.step(*bench_conv.scratch_param_dicts(layers))
            record(v, "   adam", time.perf_counter() - t0, timed)
            record(v, "step", time.perf_counter() - t_step, timed)

    load_before = os.getloadavg()
    for v in names:
        run(v, args.warmup, False)
    for _ in range(args.rounds):
        for v in names:
            run(v, args.chunk, True)
    report = {"network": args.network, "threads": args.threads, "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "steps_per_variant": args.chunk * args.rounds, "median_ms": {}}
    keys = sorted(k for k in times[names[0]] if k != "step")
    print(f"{'':28s}" + "".join(f"{v:>20s}" for v in names))
    for k in keys + ["sum of medians", "step"]:
        row = []
        for v in names:
            if k == "sum of medians":
                ms = sum(float(np.median(times[v][key])) for key in keys) * 1e3
            else:
                ms = float(np.median(times[v][k])) * 1e3
            report["median_ms"].setdefault(v, {})[k] = ms
            row.append(ms)
        print(f"{k:28s}" + "".join(f"{ms:20.3f}" for ms in row))
    print(f"load average {load_before} -> {report['load_average_after']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
