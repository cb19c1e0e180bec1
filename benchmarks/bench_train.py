"""One MNIST training epoch: scratch-ae against the same network in PyTorch.

    python benchmarks/bench_train.py                      # CPU, both networks, 5 runs each
    python benchmarks/bench_train.py --backend cupy       # GPU: CuPy vs PyTorch CUDA, batch 100 and 1024

Networks (MSE loss, Adam lr 1e-3, ReLU after every layer, the model's default):
    standard  784-256-784                          batch 100 (600 steps)
    deep      784-1000-500-250-30-250-500-1000-784  batch 256 (235 steps)

Every measured epoch runs in its own fresh process (scratch-ae and PyTorch
alternate: A B A B ...), with OpenBLAS, MKL and OpenMP pinned to the same
thread count and torch.set_num_threads set to it.  Both start from the same
weights (scratch-ae's seeded He initialisation, copied into nn.Linear), see the
same minibatches (the Trainer's seeded permutation) and read the loss back once
per epoch.  scratch-ae runs with engine="auto" (the model and its Adam: on the CPU
with Numba, the fast engine, each Dense + ReLU pair one compiled pass and the
compiled Adam), or --engine reference / fast (--engine both times auto and
reference, interleaved);
PyTorch its default Adam on the CPU and Adam(fused=True) on CUDA.  On the GPU,
before its measured epoch, each process trains a throwaway copy for
--warmup-steps steps (kernels compiled and loaded).  A process reports its
epoch time, CPU time, loss, and memory: ru_maxrss (the whole process) and the
epoch's own peak over what was resident before it (VmHWM reset through
/proc/self/clear_refs); on the GPU also the allocator's device memory.

Also measured: the machine's float32 GEMM rate (best of NumPy and PyTorch at
large square sizes, same threads, before and after the epochs), each epoch's
GEMM work over that rate (the efficiency), and where a scratch-ae epoch's time
goes: each layer's forward and backward, the loss and the optimizer step timed
on their own (common.Breakdown) over one epoch of the model's own Trainer.

The result is printed as one JSON document (and written to --out if given).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

if str(common.ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(1, str(common.ROOT))

SCRIPT = Path(__file__).resolve()
LR = 1e-3


# ============================================================================ workers (one process each)
def worker_scratch(spec):
    """One epoch of scratch-ae's own Trainer (what `Autoencoder.fit` runs)."""
    X = common.load_mnist_train(spec.get("limit"))
    from scratch_ae import Autoencoder, Trainer
    from scratch_ae.optimizers import Adam
    engine = spec.get("engine", "auto")
    model = Autoencoder(sizes=spec["sizes"], activation="relu", output_activation="relu", loss="mse",
                        backend=spec["backend"], seed=spec["seed"], engine=engine)
    make_trainer = lambda m: Trainer(m, Adam(LR, engine=engine), epochs=1, batch_size=spec["batch"],
                                     seed=spec["seed"], progress=False)
    if spec["backend"] == "cupy":
        import cupy
        X = cupy.asarray(X)  # the data set lives on the device before the clock starts
        pool = cupy.get_default_memory_pool()
    if spec.get("warmup_steps"):  # a throwaway model: kernels compiled, BLAS threads started, caches warm
        throwaway = Autoencoder(sizes=spec["sizes"], backend=spec["backend"], seed=spec["seed"] + 1, engine=engine)
        make_trainer(throwaway).fit(X[:spec["warmup_steps"] * spec["batch"]])
        del throwaway
        if spec["backend"] == "cupy":
            pool.free_all_blocks()
    trainer = make_trainer(model)
    rss_before = common.current_rss_kib()
    reset = common.reset_peak_rss()
    cpu0 = time.process_time()
    history = trainer.fit(X)
    # CPU seconds of all threads over the whole fit() (its data check included), the
    # measure that other load on the machine disturbs least.
    out = {"epoch_s": history["epoch_seconds"][0], "epoch_cpu_s": time.process_time() - cpu0,
           "loss": history["train_loss"][0], "engine": model.engine_}
    out.update(common.memory_report(rss_before, reset))
    if spec["backend"] == "cupy":
        out["device_pool_mib"] = pool.total_bytes() / 2**20
        out["device"] = model.backend_.device_name()
    else:
        out["blas"] = common.blas_info()
    return out


def build_torch_net(sizes, seed, device):
    import torch
    from torch import nn
    layers = []
    for W in common.he_weights(sizes, seed):
        lin = nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.zero_()
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers).to(device)


def torch_epoch(net, opt, Xt, batch, seed, sync):
    """One PyTorch epoch over Xt in the Trainer's batch order; returns (seconds, mean loss)."""
    import torch
    import torch.nn.functional as F
    n = Xt.shape[0]
    sync()
    t0 = time.perf_counter()
    order = torch.from_numpy(np.random.default_rng([seed, 0]).permutation(n)).to(Xt.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=Xt.device)
    for step in range(math.ceil(n / batch)):
        xb = Xt[order[step * batch:(step + 1) * batch]]
        loss = F.mse_loss(net(xb), xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * xb.shape[0]
    loss_value = float(loss_sum) / n  # the one read back of the epoch
    return time.perf_counter() - t0, loss_value


def torch_setup(sizes, seed, device, torch_adam="default"):
    """The network (scratch-ae's initial weights) and its Adam.

    CPU: torch's default Adam (what `torch.optim.Adam(params)` gives a user), or with
    torch_adam="fused" its fused CPU kernel.  CUDA: always its fused kernel, the fastest
    it has (ours is fused too).
    """
    import torch
    net = build_torch_net(sizes, seed, device)
    fused = device == "cuda" or torch_adam == "fused"
    opt = torch.optim.Adam(net.parameters(), lr=LR, **({"fused": True} if fused else {}))
    return net, opt


def worker_torch(spec):
    """The same epoch in PyTorch: same data, weights, batches, optimizer, threads."""
    import torch
    torch.set_num_threads(spec["threads"])
    X = common.load_mnist_train(spec.get("limit"))
    device = "cuda" if spec["backend"] == "cupy" else "cpu"
    net, opt = torch_setup(spec["sizes"], spec["seed"], device, spec.get("torch_adam", "default"))
    Xt = torch.from_numpy(X).to(device)  # zero-copy on the CPU
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if spec.get("warmup_steps"):  # a throwaway network, as for scratch-ae
        throwaway = torch_setup(spec["sizes"], spec["seed"] + 1, device, spec.get("torch_adam", "default"))
        torch_epoch(*throwaway, Xt[:spec["warmup_steps"] * spec["batch"]], spec["batch"], spec["seed"], sync)
        del throwaway
        if device == "cuda":
            torch.cuda.empty_cache()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    rss_before = common.current_rss_kib()
    reset = common.reset_peak_rss()
    cpu0 = time.process_time()
    epoch_s, loss_value = torch_epoch(net, opt, Xt, spec["batch"], spec["seed"], sync)
    out = {"epoch_s": epoch_s, "epoch_cpu_s": time.process_time() - cpu0, "loss": loss_value, "torch": torch.__version__,
           "torch_threads": torch.get_num_threads()}
    out.update(common.memory_report(rss_before, reset))
    if device == "cuda":
        out["device_pool_mib"] = torch.cuda.max_memory_reserved() / 2**20
        out["device_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["device"] = torch.cuda.get_device_name()
    return out


def worker_gemm(spec):
    """Best float32 GEMM rate (FLOP/s) of one library at large square sizes."""
    lib, sizes, out = spec["lib"], spec.get("sizes", [1024, 2048, 4096]), {}
    if lib == "numpy":
        mm, sync = (lambda a, b: a @ b), (lambda: None)
        make = lambda n, s: np.random.default_rng(s).standard_normal((n, n), dtype=np.float32)
    elif lib == "cupy":
        import cupy
        mm, sync = (lambda a, b: a @ b), cupy.cuda.get_current_stream().synchronize
        make = lambda n, s: cupy.asarray(np.random.default_rng(s).standard_normal((n, n), dtype=np.float32))
    else:
        import torch
        torch.set_num_threads(spec["threads"])
        device = "cuda" if lib == "torch-cuda" else "cpu"
        mm = torch.mm
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        make = lambda n, s: torch.from_numpy(np.random.default_rng(s).standard_normal((n, n), dtype=np.float32)).to(device)
    for n in sizes:
        a, b = make(n, 1), make(n, 2)
        mm(a, b)
        sync()
        best = math.inf
        for _ in range(spec.get("repeats", 3)):
            t0 = time.perf_counter()
            mm(a, b)
            sync()
            best = min(best, time.perf_counter() - t0)
        out[str(n)] = 2 * n ** 3 / best
    return {"lib": lib, "flops_per_s": out, "best": max(out.values())}


def worker_breakdown(spec):
    """Where a scratch-ae epoch's time goes: the model's own Trainer.fit, each layer's forward and
    backward (the fast layers where the engine is fast), the loss and Adam's step timed on their own
    (common.Breakdown); the rest is batching and the loop.  On CuPy the times are of the calls
    (the GPU runs asynchronously): read them only on the CPU."""
    X = common.load_mnist_train(spec.get("limit"))
    from scratch_ae import Autoencoder, Trainer
    from scratch_ae.optimizers import Adam
    engine = spec.get("engine", "auto")
    build = lambda seed: Autoencoder(sizes=spec["sizes"], activation="relu", output_activation="relu", loss="mse",
                                     backend=spec["backend"], seed=seed, engine=engine)
    if spec.get("warmup_steps"):
        Trainer(build(spec["seed"] + 1), Adam(LR, engine=engine), epochs=1, batch_size=spec["batch"],
                progress=False).fit(X[:spec["warmup_steps"] * spec["batch"]])
    model, optimizer, bd = build(spec["seed"]), Adam(LR, engine=engine), common.Breakdown()
    bd.attach_model(model).attach_call(optimizer, "step", "optimizer.step")
    history = Trainer(model, optimizer, epochs=1, batch_size=spec["batch"], seed=spec["seed"], progress=False).fit(X)
    total, steps = history["epoch_seconds"][0], math.ceil(X.shape[0] / spec["batch"])
    phases = bd.report(total)
    return {"epoch_s": total, "loss": history["train_loss"][0], "engine": model.engine_, "phases_s": phases,
            "phases_fraction": {k: v / total for k, v in phases.items()},
            "ms_per_step": {k: v * 1e3 / steps for k, v in phases.items()}}


WORKERS = {"scratch": worker_scratch, "torch": worker_torch, "gemm": worker_gemm, "breakdown": worker_breakdown}


# ============================================================================ the driver
def summarise(runs):
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float)) and not isinstance(runs[0][k], bool)]
    out = {f"median_{k}": common.median([r[k] for r in runs]) for k in keys}
    out["epoch_s_runs"] = [round(r["epoch_s"], 4) for r in runs]
    for k in ("blas", "torch", "torch_threads", "device"):
        if k in runs[0]:
            out[k] = runs[0][k]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    p.add_argument("--runs", type=int, default=5, help="measured epochs per implementation and configuration (default 5)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="BLAS/OpenMP/torch threads (default: all usable cores)")
    p.add_argument("--networks", default="standard,deep", help="comma-separated: standard, deep")
    p.add_argument("--batch-sizes", default=None, help="override the batch sizes (CPU default: 100 standard, 256 deep; GPU: 100,1024)")
    p.add_argument("--engine", choices=["auto", "reference", "fast", "both"], default="auto",
                   help="scratch-ae's engine= for the model and Adam; 'both' times auto and reference, interleaved "
                        "('scratch_reference' in every round) (default auto)")
    p.add_argument("--torch-adam", choices=["default", "fused"], default="default",
                   help="PyTorch's Adam on the CPU: torch.optim.Adam's default, or fused=True (on CUDA always fused)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images (a partial epoch; for quick checks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="steps of a throwaway model in each process before the measured epoch, for both "
                        "libraries (default: 10 on the GPU, to compile and load kernels; 2 on the CPU, to load "
                        "the compiled Adam from Numba's cache and start the BLAS threads)")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-phase breakdown")
    p.add_argument("--skip-torch", action="store_true", help="only time scratch-ae")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker is not None:
        spec = json.loads(args.worker)
        print(json.dumps(WORKERS[spec["kind"]](spec)))
        return 0

    gpu = args.backend == "cupy"
    if args.warmup_steps is None:
        args.warmup_steps = 10 if gpu else 2
    if gpu:
        from scratch_ae.backend import cupy_unavailable_reason
        reason = cupy_unavailable_reason()
        if reason is not None:
            print(json.dumps({"skipped": f"--backend cupy needs a CUDA GPU: {reason}"}))
            return 2
        if not args.skip_torch and not common.torch_has_cuda():
            print(json.dumps({"skipped": "--backend cupy compares against PyTorch on CUDA, but this PyTorch has no "
                                         "CUDA (a CPU build, or no GPU for it); install a CUDA build, or pass "
                                         "--skip-torch to time scratch-ae alone"}))
            return 2
    threads = args.threads
    n_images = args.limit or 60000
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join([Path(sys.executable).name] + sys.argv),
              "machine": common.machine(), "backend": args.backend, "threads": threads, "runs": args.runs,
              "scratch_engine": args.engine, "numba": common.numba_version(),
              "torch_adam": "fused" if gpu else args.torch_adam, "images_per_epoch": n_images,
              "load_average_before": os.getloadavg()}

    gemm_libs = ["cupy", "torch-cuda"] if gpu else ["numpy", "torch"]
    if args.skip_torch:
        gemm_libs = gemm_libs[:1]
    gemm_sizes = [2048, 4096, 8192] if gpu else [1024, 2048, 4096]
    def measure_gemm():
        return {lib: common.run_worker(SCRIPT, {"kind": "gemm", "lib": lib, "threads": threads, "sizes": gemm_sizes,
                                                "repeats": 5}, threads) for lib in gemm_libs}
    gemm_before = measure_gemm()

    configs = []
    for net in args.networks.split(","):
        if args.batch_sizes:
            batches = [int(b) for b in args.batch_sizes.split(",")]
        else:
            batches = [100, 1024] if gpu else [common.NETWORKS[net]["batch"]]
        configs += [(net, b) for b in batches]

    base = {"backend": args.backend, "seed": args.seed, "threads": threads, "limit": args.limit,
            "warmup_steps": args.warmup_steps, "torch_adam": args.torch_adam,
            "engine": "auto" if args.engine == "both" else args.engine}
    impls = ["scratch"] + (["scratch_reference"] if args.engine == "both" else []) + ([] if args.skip_torch else ["torch"])
    runs = {c: {impl: [] for impl in impls} for c in configs}
    for r in range(args.runs):  # interleaved: A B A B ...
        for net, batch in configs:
            for impl in impls:
                spec = dict(base, kind=impl, sizes=common.NETWORKS[net]["sizes"], batch=batch)
                if impl == "scratch_reference":
                    spec.update(kind="scratch", engine="reference")
                res = common.run_worker(SCRIPT, spec, threads)
                runs[(net, batch)][impl].append(res)
                print(f"run {r + 1}/{args.runs} {net} batch {batch} {impl}: {res['epoch_s']:.3f} s, "
                      f"loss {res['loss']:.5f}, peak {res['peak_rss_mib']:.0f} MiB", file=sys.stderr, flush=True)

    # The GEMM rate is measured before and after the runs; the best is the machine's rate.
    gemm_after = measure_gemm()
    rate = max(g["best"] for g in list(gemm_before.values()) + list(gemm_after.values()))
    report["gemm"] = {"machine_rate_flops_per_s": rate, "before_runs": gemm_before, "after_runs": gemm_after,
                      "note": "best of 5 square float32 products per size, measured before and after the epochs; "
                              "the machine rate is the best of all"}
    results = {}
    for (net, batch), by_impl in runs.items():
        sizes = common.NETWORKS[net]["sizes"]
        flops = common.epoch_gemm_flops(sizes, n_images)
        entry = {"sizes": sizes + sizes[-2::-1], "batch": batch, "epoch_gemm_flops": flops}
        for impl, rs in by_impl.items():
            if not rs:
                continue
            s = summarise(rs)
            s["gemm_efficiency"] = flops / rate / s["median_epoch_s"]
            entry[impl] = s
        if "torch" in entry:
            entry["ratio_scratch_over_torch"] = entry["scratch"]["median_epoch_s"] / entry["torch"]["median_epoch_s"]
            if "scratch_reference" in entry:
                entry["ratio_scratch_reference_over_torch"] = (entry["scratch_reference"]["median_epoch_s"]
                                                              / entry["torch"]["median_epoch_s"])
            entry["cpu_time_ratio_scratch_over_torch"] = (entry["scratch"]["median_epoch_cpu_s"]
                                                          / entry["torch"]["median_epoch_cpu_s"])
            entry["peak_rss_ratio"] = entry["scratch"]["median_peak_rss_mib"] / entry["torch"]["median_peak_rss_mib"]
            if "median_epoch_extra_mib" in entry["scratch"] and "median_epoch_extra_mib" in entry["torch"]:
                entry["epoch_extra_memory_ratio"] = (entry["scratch"]["median_epoch_extra_mib"]
                                                     / max(entry["torch"]["median_epoch_extra_mib"], 1e-9))
            if gpu:
                entry["device_memory_ratio"] = entry["scratch"]["median_device_pool_mib"] / entry["torch"]["median_device_pool_mib"]
        if not args.no_breakdown:
            entry["breakdown"] = common.run_worker(SCRIPT, dict(base, kind="breakdown", sizes=sizes, batch=batch), threads)
        results[f"{net}/batch{batch}"] = entry
    report["results"] = results
    report["load_average_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
