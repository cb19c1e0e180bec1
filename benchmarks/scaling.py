"""Epoch time against hidden size and batch size: scratch-ae and PyTorch, table + PNG.

    python benchmarks/scaling.py                       # CPU, first 6,000 images, 3 repeats
    python benchmarks/scaling.py --backend cupy --images 60000

Two sweeps of the one-hidden-layer 784-H-784 ReLU/ReLU autoencoder (MSE, Adam 1e-3):
    hidden size H in 64 .. 4096 at batch 100;   batch size B in 32 .. 4096 at H = 256.
To keep the CPU sweep short it trains on a subset of the epoch (--images, default
6,000 of the 60,000 images), twice, times the second pass (so one-off first-step
costs are left out) and reports that time scaled to a full epoch (x 60000 /
images): per-image work is the same in every part of an epoch, so the scaling
is exact up to the small fixed per-pass cost (the permutation, one read back).
Each library runs in its own long-lived worker process (so neither's idle,
spin-waiting threads share a process with the other's work); the driver asks
them in turn, A B A B over --repeats repeats, and reports medians.  BLAS,
OpenMP and torch use --threads threads.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--images", type=int, default=6000, help="images per measured (partial) epoch (default 6000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", default="64,128,256,512,1024,2048,4096")
    p.add_argument("--batches", default="32,64,128,256,512,1024,2048,4096")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "results" / "scaling", help="writes OUT.json, OUT.md and OUT.png")
    p.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def serve(impl, backend, images, threads):
    """Worker process: read {"sizes", "batch"} lines on stdin, answer {"epoch_s"} lines on stdout.

    One long-lived process per library, so neither library's idle threads share
    a process with the other's work (both spin-wait for a while after each call).
    """
    import numpy as np  # noqa: F401  (after the thread variables are set)

    import bench_train
    import common
    X = common.load_mnist_train(images)
    if impl == "scratch-ae":
        from scratch_ae import Autoencoder, Trainer
        from scratch_ae.optimizers import Adam
        if backend == "cupy":
            import cupy
            X = cupy.asarray(X)

        def run(sizes, batch):
            model = Autoencoder(sizes=sizes, backend=backend, seed=0)
            trainer = Trainer(model, Adam(bench_train.LR), epochs=2, batch_size=batch, seed=0, progress=False)
            return trainer.fit(X)["epoch_seconds"][1]  # the second pass: first-step costs excluded
    else:
        import torch
        torch.set_num_threads(threads)
        device = "cuda" if backend == "cupy" else "cpu"
        Xt = torch.from_numpy(X).to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def run(sizes, batch):
            net, opt = bench_train.torch_setup(sizes, 0, device)
            bench_train.torch_epoch(net, opt, Xt, batch, 0, sync)
            return bench_train.torch_epoch(net, opt, Xt, batch, 0, sync)[0]  # the second pass, as above

    run([784, 64], 100)  # warm-up: BLAS threads, GPU kernels
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps({"epoch_s": run(req["sizes"], req["batch"])}), flush=True)


def main(argv=None):
    args = parse(argv)
    # Thread counts must be fixed before NumPy (OpenBLAS) and torch (OpenMP) start.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    if args.serve:
        serve(args.serve, args.backend, args.images, args.threads)
        return
    import subprocess

    import common

    gpu = args.backend == "cupy"
    if gpu:
        from scratch_ae.backend import cupy_unavailable_reason
        if cupy_unavailable_reason() is not None:
            print(json.dumps({"skipped": f"--backend cupy needs a CUDA GPU: {cupy_unavailable_reason()}"}))
            return 2
    impls = ["scratch-ae"] if args.skip_torch else ["scratch-ae", "pytorch"]
    workers = {impl: subprocess.Popen([sys.executable, __file__, "--serve", impl, "--backend", args.backend,
                                       "--images", str(args.images), "--threads", str(args.threads)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      env=common.thread_env(args.threads))
               for impl in impls}

    def ask(impl, sizes, batch):
        w = workers[impl]
        w.stdin.write(json.dumps({"sizes": sizes, "batch": batch}) + "\n")
        w.stdin.flush()
        line = w.stdout.readline()
        if not line:
            raise RuntimeError(f"the {impl} worker died (rc {w.poll()})")
        return json.loads(line)["epoch_s"]

    def measure_gemm():
        spec = {"kind": "gemm", "lib": "cupy" if gpu else "numpy", "threads": args.threads, "repeats": 5}
        return common.run_worker(HERE / "bench_train.py", spec, args.threads)["best"]
    gemm = {"best": measure_gemm()}
    n_images = min(args.images, 60000)
    scale = 60000 / n_images
    hidden = [int(h) for h in args.hidden.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    sweeps = {"hidden": [([784, h], 100, h) for h in hidden], "batch": [([784, 256], b, b) for b in batches]}
    rows = {"hidden": [], "batch": []}
    for sweep, configs in sweeps.items():
        for sizes, batch, x in configs:
            times = {impl: [] for impl in impls}
            for _ in range(args.repeats):  # A B A B ...
                for impl in impls:
                    times[impl].append(ask(impl, sizes, batch) * scale)
            row = {"x": x, "sizes": sizes, "batch": batch}
            flops = common.epoch_gemm_flops(sizes, 60000)
            for impl in impls:
                med = common.median(times[impl])
                row[impl] = {"epoch_s": med, "gemm_efficiency": flops / gemm["best"] / med,
                             "runs_s": [round(t, 4) for t in times[impl]]}
            if "pytorch" in row:
                row["ratio"] = row["scratch-ae"]["epoch_s"] / row["pytorch"]["epoch_s"]
            rows[sweep].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    for w in workers.values():
        w.stdin.close()
        w.wait()
    gemm["best"] = max(gemm["best"], measure_gemm())  # before and after the sweep: the best is the machine's rate
    for sweep in rows.values():
        for row in sweep:
            for impl in impls:
                row[impl]["gemm_efficiency"] = common.epoch_gemm_flops(row["sizes"], 60000) / gemm["best"] / row[impl]["epoch_s"]

    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(["python"] + sys.argv),
              "machine": common.machine(), "backend": args.backend, "threads": args.threads,
              "images_measured": n_images, "scaled_to": 60000, "repeats": args.repeats,
              "gemm_rate_flops_per_s": gemm["best"], "load_average_after": os.getloadavg(), "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(report, impls))
    plot(report, impls, args.out.with_suffix(".png"))
    print(table(report, impls))


def table(report, impls):
    lines = [f"Epoch seconds (measured on {report['images_measured']} images, scaled to 60,000), "
             f"{report['backend']}, {report['threads']} threads; eff = epoch GEMM work / "
             f"({report['gemm_rate_flops_per_s'] / 1e9:.1f} GFLOP/s) / time", ""]
    for sweep, label in (("hidden", "hidden size (batch 100)"), ("batch", "batch size (hidden 256)")):
        head = f"| {label} | " + " | ".join(f"{i} s | {i} eff" for i in impls) + " |" + (" ratio |" if len(impls) == 2 else "")
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for r in report["rows"][sweep]:
            cells = " | ".join(f"{r[i]['epoch_s']:.3f} | {100 * r[i]['gemm_efficiency']:.0f}%" for i in impls)
            lines.append(f"| {r['x']} | {cells} |" + (f" {r['ratio']:.2f} |" if "ratio" in r else ""))
        lines.append("")
    return "\n".join(lines)


def plot(report, impls, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (sweep, label) in zip(axes, (("hidden", "hidden size H (784-H-784, batch 100)"),
                                         ("batch", "batch size (784-256-784)"))):
        rows = report["rows"][sweep]
        for impl, style in zip(impls, ("o-", "s--")):
            ax.plot([r["x"] for r in rows], [r[impl]["epoch_s"] for r in rows], style, label=impl)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("epoch time, s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"MNIST epoch time ({report['backend']}, {report['threads']} threads; "
                 f"measured on {report['images_measured']} images, scaled to 60,000)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
