"""Convolutional autoencoders on real MNIST: scratch-ae's conv layers against the same networks in PyTorch.

    python benchmarks/bench_conv.py                        # both networks, 5 interleaved runs each
    python benchmarks/bench_conv.py --networks pooled --runs 3 --steps 100

Networks (MSE loss, Adam lr 1e-3, PyTorch's default initialisation drawn by scratch-ae and
copied into torch, so both start from the same weights):

    stride2  coloured MNIST (3x28x28), batch 128:
             Conv2d(3,128,3,s2,p1) ReLU Conv2d(128,64,3,s2,p1) ReLU Conv2d(64,32,3,s2,p1) ReLU
             Conv2d(32,16,3,s2,p1) ReLU   (28 -> 14 -> 7 -> 4 -> 2)
             ConvT(16,32,3,s2,p1,op1) ReLU ConvT(32,64,3,s2,p1,op0) ReLU ConvT(64,128,3,s2,p1,op1) ReLU
             ConvT(128,3,3,s2,p1,op1) Sigmoid   (2 -> 4 -> 7 -> 14 -> 28)
    pooled   MNIST (1x28x28), batch 100:
             Conv2d(1,16,3,p1) ReLU MaxPool2d(2) Conv2d(16,8,3,p1) ReLU MaxPool2d(2)
             MaxUnpool2d(pool 2) ConvT(8,16,3,p1) ReLU MaxUnpool2d(pool 1) ConvT(16,1,3,p1)

scratch-ae's side is a plain list of its layers: a forward loop, the MSE gradient by hand,
a backward loop in reverse (a Sequential: the reference layers, or `scratch_ae.fast.to_fast` of them for
engine="fast"), and `scratch_ae.optimizers.Adam(engine=...).step` on params/grads dicts keyed "<layer index>.<name>".  PyTorch's side is nn.Conv2d / nn.ConvTranspose2d /
F.max_pool2d(return_indices) / F.max_unpool2d with torch.optim.Adam's default.

Each measurement is one fresh process (scratch-ae and PyTorch alternate: A B A B ...), with
OpenBLAS, MKL, OpenMP and Numba pinned to --threads (threadpoolctl in the scratch-ae worker,
torch.set_num_threads in the PyTorch one).  Both read the same batches (a seeded permutation
of the 60,000 training images, loaded once by `scratch_ae.data.load_dataset` and handed to the
workers as .npy files, so the PyTorch worker never imports scratch_ae), run --warmup steps, then
time --steps steps one by one (the loss is accumulated on the side and read once at the end).
The epoch time is extrapolated from the timed steps: seconds per image x 60,000 (a partial
epoch: the whole epoch would only add more of the same steps).  Also reported: the median
step, the process's peak resident size (VmHWM: ru_maxrss would include the parent's, carried
through fork + exec), the training's own peak over what was resident after imports, data and
model (training_peak_mib), and the timed steps' peak over what was resident before them
(VmHWM reset through /proc/self/clear_refs).

Also measured: the machine's float32 GEMM rate (bench_train's worker: best of NumPy and
PyTorch at 1024-4096 square, before and after the runs), the FLOPs of each network's products
(forward, weight gradient, input gradient but not for the first layer), their fraction of the
GEMM rate, and where a scratch-ae step's time goes (an instrumented process: the conv modules'
products, im2col/col2im and the rest wrapped in stopwatches; see worker_breakdown).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

if str(common.ROOT) not in sys.path:
    sys.path.insert(1, str(common.ROOT))

SCRIPT = Path(__file__).resolve()
LR = 1e-3
N_IMAGES = 60000

# (kind, in, out, kernel, stride, padding, output_padding) for the convolutions, "relu",
# "sigmoid", ("pool", id) and ("unpool", id) for the rest; the same list builds both libraries.
NETWORKS = {
    "stride2": {
        "dataset": "colored-mnist", "image": (3, 28, 28), "batch": 128,
        "layers": [("conv", 3, 128, 3, 2, 1, 0), "relu", ("conv", 128, 64, 3, 2, 1, 0), "relu",
                   ("conv", 64, 32, 3, 2, 1, 0), "relu", ("conv", 32, 16, 3, 2, 1, 0), "relu",
                   ("convT", 16, 32, 3, 2, 1, 1), "relu", ("convT", 32, 64, 3, 2, 1, 0), "relu",
                   ("convT", 64, 128, 3, 2, 1, 1), "relu", ("convT", 128, 3, 3, 2, 1, 1), "sigmoid"],
    },
    "pooled": {
        "dataset": "mnist", "image": (1, 28, 28), "batch": 100,
        "layers": [("conv", 1, 16, 3, 1, 1, 0), "relu", ("pool", 1), ("conv", 16, 8, 3, 1, 1, 0), "relu",
                   ("pool", 2), ("unpool", 2), ("convT", 8, 16, 3, 1, 1, 0), "relu", ("unpool", 1),
                   ("convT", 16, 1, 3, 1, 1, 0)],
    },
}


# ---------------------------------------------------------------------------- shapes and GEMM work
def layer_shapes(net):
    """[(spec, input (C, H, W), output (C, H, W))] through the network, by PyTorch's size formulas."""
    shape, out, pools = NETWORKS[net]["image"], [], {}
    for spec in NETWORKS[net]["layers"]:
        C, H, W = shape
        if isinstance(spec, tuple) and spec[0] == "conv":
            _, ci, co, k, s, p, _ = spec
            new = (co, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1)
        elif isinstance(spec, tuple) and spec[0] == "convT":
            _, ci, co, k, s, p, op = spec
            new = (co, (H - 1) * s - 2 * p + k + op, (W - 1) * s - 2 * p + k + op)
        elif isinstance(spec, tuple) and spec[0] == "pool":
            pools[spec[1]] = shape
            new = (C, H // 2, W // 2)
        elif isinstance(spec, tuple) and spec[0] == "unpool":
            new = pools[spec[1]]
        else:
            new = shape
        out.append((spec, shape, new))
        shape = new
    return out


def epoch_gemm_flops(net, n_images=N_IMAGES):
    """FLOPs (2 per multiply-add) of one epoch's products: each convolution's forward, weight
    gradient and input gradient (not for the first layer, whose input is the data), each
    2 x (output pixels) x C_out x C_in kH kW for a Conv2d and 2 x (input pixels) x C_in x C_out kH kW
    for a ConvTranspose2d.  Per image, times the images."""
    per_image, first = 0, True
    for spec, (ci, hi, wi), (co, ho, wo) in layer_shapes(net):
        if not (isinstance(spec, tuple) and spec[0] in ("conv", "convT")):
            continue
        k = spec[3]
        one = 2 * ho * wo * co * ci * k * k if spec[0] == "conv" else 2 * hi * wi * ci * co * k * k
        per_image += one * (2 if first else 3)
        first = False
    return per_image * n_images


# ---------------------------------------------------------------------------- data (parent process)
def prepare_data(net, seed, steps, directory):
    """The batches the workers read, as one .npy file: the first `steps` batches of the seeded
    permutation of the 60,000 training images, (steps*batch, C, H, W) float32."""
    from scratch_ae.data import load_dataset
    cfg = NETWORKS[net]
    path = Path(directory) / f"{net}-{seed}-{steps}.npy"
    if not path.exists():
        X = load_dataset(cfg["dataset"], "train").images
        order = np.random.default_rng([seed, 0]).permutation(X.shape[0])[:steps * cfg["batch"]]
        np.save(path, np.ascontiguousarray(X[order].reshape((-1,) + cfg["image"]), dtype=np.float32))
    return str(path)


# ---------------------------------------------------------------------------- scratch-ae's network
def build_scratch(net, seed):
    """The network as a list of scratch-ae layers; weights drawn in order from one seeded generator."""
    from scratch_ae.layers import Conv2d, ConvTranspose2d, MaxPool2d, MaxUnpool2d, ReLU, Sigmoid
    rng = np.random.default_rng(seed)
    layers, pools, first = [], {}, True
    for spec in NETWORKS[net]["layers"]:
        if spec == "relu":
            layers.append(ReLU())
        elif spec == "sigmoid":
            layers.append(Sigmoid())
        elif spec[0] == "pool":
            pools[spec[1]] = MaxPool2d(2)
            layers.append(pools[spec[1]])
        elif spec[0] == "unpool":
            layers.append(MaxUnpool2d(pools[spec[1]]))
        elif spec[0] == "conv":
            _, ci, co, k, s, p, _ = spec
            layers.append(Conv2d(ci, co, k, s, p, rng=rng, need_input_grad=not first))
            first = False
        else:
            _, ci, co, k, s, p, op = spec
            layers.append(ConvTranspose2d(ci, co, k, s, p, op, rng=rng))
    return layers


def scratch_param_dicts(layers):
    params = {f"{i}.{k}": v for i, layer in enumerate(layers) for k, v in layer.params.items()}
    grads = {f"{i}.{k}": v for i, layer in enumerate(layers) for k, v in layer.grads.items()}
    return params, grads


def build_run(net, seed, engine="auto"):
    """(reference layers, the network that runs, params, grads, Adam) for `engine`: the reference
    Sequential itself, or scratch_ae.fast.to_fast of it (what ConvAutoencoder runs for engine="fast")."""
    from scratch_ae.fast import resolve_engine, to_fast
    from scratch_ae.optimizers import Adam
    from scratch_ae.sequential import Sequential
    layers = build_scratch(net, seed)
    network = Sequential(layers)
    run = to_fast(network) if resolve_engine(engine, np) == "fast" else network
    params, grads = scratch_param_dicts(layers)
    return layers, run, params, grads, Adam(LR, engine=engine)


def scratch_step(run, params, grads, optimizer, xb):
    """One training step: the network's forward (Sequential's loop), MSE and its gradient by hand,
    its backward, Adam.  A fast network enters the two-thread hold itself."""
    h = run.forward(xb)
    diff = h - xb
    loss = np.mean(diff * diff)             # L = mean (x_hat - x)^2 over all B*C*H*W entries
    run.backward((np.float32(2.0) / np.float32(diff.size)) * diff)  # dL/dx_hat
    optimizer.step(params, grads)
    return loss


def set_threads(threads):
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)


def timed_steps(step, batches, warmup, steps, batch):
    """Run warmup steps, then time `steps` steps one by one; returns (per-step seconds, losses)."""
    rss_setup = common.current_rss_kib()  # libraries, data, model: before the first step
    for s in range(warmup):
        step(batches[s * batch:(s + 1) * batch])
    hwm_warmup = common._status_kib("VmHWM")
    rss_before = common.current_rss_kib()
    reset = common.reset_peak_rss()
    cpu0 = time.process_time()
    times, losses = [], []
    for s in range(steps):
        xb = batches[s * batch:(s + 1) * batch]
        t0 = time.perf_counter()
        losses.append(step(xb))
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    mem = common.memory_report(rss_before, reset)
    # ru_maxrss (memory_report's peak_rss_mib) carries over the parent's high-water mark through
    # fork + exec on Linux, so the process's own peak is read from VmHWM (this mm only) instead.
    peak = max(hwm_warmup, common._status_kib("VmHWM")) / 1024
    mem.update(peak_rss_mib=peak, rss_after_setup_mib=rss_setup / 1024, training_peak_mib=peak - rss_setup / 1024)
    return times, losses, cpu, mem


def summarise_steps(times, batch, cpu):
    t = np.asarray(times)
    return {"epoch_s": float(t.sum() / (t.size * batch) * N_IMAGES), "step_median_ms": float(np.median(t) * 1e3),
            "step_p10_ms": float(np.percentile(t, 10) * 1e3),
            "epoch_s_from_median_step": float(np.median(t) / batch * N_IMAGES),
            "epoch_cpu_s": cpu / (t.size * batch) * N_IMAGES, "timed_steps": int(t.size)}


def worker_scratch(spec):
    set_threads(spec["threads"])
    engine = spec.get("engine", "auto")
    cfg = NETWORKS[spec["net"]]
    X = np.load(spec["data"])
    _, run, params, grads, optimizer = build_run(spec["net"], spec["seed"], engine)
    first_loss = float(scratch_step(*build_run(spec["net"], spec["seed"], engine)[1:], X[:cfg["batch"]])) \
        if spec.get("first_loss") else None
    times, losses, cpu, mem = timed_steps(lambda xb: scratch_step(run, params, grads, optimizer, xb), X,
                                          spec["warmup"], spec["steps"], cfg["batch"])
    out = summarise_steps(times, cfg["batch"], cpu)
    out.update(mem, loss=float(np.mean(losses)), engine=engine, blas=common.blas_info(), first_loss=first_loss)
    return out


# ---------------------------------------------------------------------------- PyTorch's network
def build_torch(net, seed):
    """The same network in PyTorch, its convolutions' weights copied from build_scratch's."""
    import torch
    from torch import nn
    F = torch.nn.functional
    scratch = build_scratch_weights(net, seed)
    modules, ops, pools = [], [], {}
    for spec in NETWORKS[net]["layers"]:
        if spec == "relu":
            ops.append(("relu", None))
        elif spec == "sigmoid":
            ops.append(("sigmoid", None))
        elif spec[0] in ("pool", "unpool"):
            ops.append(spec)
        else:
            _, ci, co, k, s, p, op = spec
            m = nn.Conv2d(ci, co, k, s, p) if spec[0] == "conv" else nn.ConvTranspose2d(ci, co, k, s, p, op)
            W, b = scratch.pop(0)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(W))
                m.bias.copy_(torch.from_numpy(b))
            modules.append(m)
            ops.append(("module", m))

    def forward(x):
        indices = {}
        for kind, arg in ops:
            if kind == "module":
                x = arg(x)
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "sigmoid":
                x = torch.sigmoid(x)
            elif kind == "pool":
                x, indices[arg] = F.max_pool2d(x, 2, return_indices=True)
            else:
                x = F.max_unpool2d(x, indices[arg], 2)
        return x
    return nn.ModuleList(modules), forward


def build_scratch_weights(net, seed):
    """The convolutions' (W, b) as build_scratch draws them, without importing scratch_ae: PyTorch's
    default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W then b, from one generator in layer order
    (as scratch_ae.layers.conv.init_conv_weights draws them; the first loss is checked against it)."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in NETWORKS[net]["layers"]:
        if isinstance(spec, tuple) and spec[0] in ("conv", "convT"):
            _, ci, co, k, *_ = spec
            shape = (co, ci, k, k) if spec[0] == "conv" else (ci, co, k, k)
            bound = 1.0 / math.sqrt(shape[1] * k * k)
            W = rng.uniform(-bound, bound, shape)
            b = rng.uniform(-bound, bound, co)
            out.append((W.astype(np.float32), b.astype(np.float32)))
    return out


def worker_torch(spec):
    import torch
    torch.set_num_threads(spec["threads"])
    cfg = NETWORKS[spec["net"]]
    X = torch.from_numpy(np.load(spec["data"]))
    model, forward = build_torch(spec["net"], spec["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    first_loss = None
    if spec.get("first_loss"):
        _, f0 = build_torch(spec["net"], spec["seed"])
        first_loss = float(torch.nn.functional.mse_loss(f0(X[:cfg["batch"]]), X[:cfg["batch"]]))

    def step(xb):
        loss = torch.nn.functional.mse_loss(forward(xb), xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()
    times, losses, cpu, mem = timed_steps(step, X, spec["warmup"], spec["steps"], cfg["batch"])
    out = summarise_steps(times, cfg["batch"], cpu)
    out.update(mem, loss=float(torch.stack(losses).mean()), torch=torch.__version__,
               torch_threads=torch.get_num_threads(), first_loss=first_loss)
    return out


# ---------------------------------------------------------------------------- where scratch-ae's time goes
def worker_breakdown(spec):
    """Each layer's forward and backward (the fast layers where the engine is fast) and Adam's step
    timed on their own (common.Breakdown) over the timed steps, after the warm-up; the rest (the
    loss by hand, the batch slices) is 'other'.  (The layer-by-layer and knob-by-knob variants that
    chose the fast engine's settings are in benchmarks/archive/bench_conv_layers.py.)"""
    set_threads(spec["threads"])
    cfg = NETWORKS[spec["net"]]
    X = np.load(spec["data"])
    _, run, params, grads, optimizer = build_run(spec["net"], spec["seed"], spec.get("engine", "auto"))
    batch = cfg["batch"]
    for s in range(spec["warmup"]):
        scratch_step(run, params, grads, optimizer, X[s * batch:(s + 1) * batch])
    bd = common.Breakdown().attach(run).attach_call(optimizer, "step", "optimizer.step")
    t0 = time.perf_counter()
    for s in range(spec["warmup"], spec["warmup"] + spec["steps"]):
        scratch_step(run, params, grads, optimizer, X[s * batch:(s + 1) * batch])
    total = time.perf_counter() - t0
    scale = N_IMAGES / (spec["steps"] * batch)
    phases = bd.report(total)
    return {"timed_s": total, "phases_epoch_s": {k: v * scale for k, v in phases.items()},
            "phases_fraction": {k: v / total for k, v in phases.items()}}


def worker_gemm(spec):
    import bench_train
    return bench_train.worker_gemm(spec)


WORKERS = {"scratch": worker_scratch, "torch": worker_torch, "breakdown": worker_breakdown, "gemm": worker_gemm}


# ---------------------------------------------------------------------------- the driver
def ratio_summary(scratch, torch):
    s = [r["epoch_s"] for r in scratch]
    t = [r["epoch_s"] for r in torch]
    out = {"scratch_epoch_s_runs": [round(v, 3) for v in s], "torch_epoch_s_runs": [round(v, 3) for v in t],
           "scratch_median_epoch_s": common.median(s), "torch_median_epoch_s": common.median(t),
           "ratio_median": common.median(s) / common.median(t), "ratio_best_vs_best": min(s) / min(t),
           "ratio_paired_median": common.median([a / b for a, b in zip(s, t)])}
    for key in ("peak_rss_mib", "training_peak_mib", "rss_after_setup_mib", "epoch_extra_mib",
                "epoch_s_from_median_step", "epoch_cpu_s"):
        if key in scratch[0] and key in torch[0]:
            out[f"scratch_median_{key}"] = common.median([r[key] for r in scratch])
            out[f"torch_median_{key}"] = common.median([r[key] for r in torch])
    out["ratio_from_median_steps"] = out["scratch_median_epoch_s_from_median_step"] / out["torch_median_epoch_s_from_median_step"]
    out["peak_rss_ratio"] = out["scratch_median_peak_rss_mib"] / out["torch_median_peak_rss_mib"]
    out["training_peak_ratio"] = out["scratch_median_training_peak_mib"] / out["torch_median_training_peak_mib"]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", default="stride2,pooled", help="comma-separated: stride2, pooled")
    p.add_argument("--runs", type=int, default=5, help="processes per library and network, interleaved (default 5)")
    p.add_argument("--steps", type=int, default=150, help="timed steps per process (default 150)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (Numba's cache loaded, BLAS threads up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--engine", choices=["auto", "reference", "fast"], default="auto",
                   help="scratch-ae's engine= for the network and Adam (default auto: fast where Numba is installed)")
    p.add_argument("--with-reference", action="store_true",
                   help="also time scratch-ae with engine='reference' in every round (a third implementation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument("--no-gemm", action="store_true")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--data-dir", default=None, help="where the batch files go (default: a temporary directory)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        spec = json.loads(args.worker)
        print(json.dumps(WORKERS[spec["kind"]](spec)))
        return 0

    threads = args.threads
    nets = args.networks.split(",")
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join([Path(sys.executable).name] + sys.argv),
              "machine": common.machine(), "threads": threads, "runs": args.runs, "steps": args.steps,
              "warmup": args.warmup, "numba": common.numba_version(), "load_average_before": os.getloadavg(),
              "epoch_note": f"epoch seconds = timed seconds per image x {N_IMAGES} ({args.steps} timed steps per process)"}
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench-conv-")
    data = {net: prepare_data(net, args.seed, args.warmup + args.steps, data_dir) for net in nets}
    gemm_libs = ["numpy"] + ([] if args.skip_torch else ["torch"])
    measure_gemm = lambda: {lib: common.run_worker(SCRIPT, {"kind": "gemm", "lib": lib, "threads": threads,
                                                            "sizes": [1024, 2048, 4096], "repeats": 5}, threads)
                            for lib in gemm_libs}
    gemm_before = None if args.no_gemm else measure_gemm()

    impls = ["scratch"] + (["scratch_reference"] if args.with_reference else []) + ([] if args.skip_torch else ["torch"])
    runs = {net: {impl: [] for impl in impls} for net in nets}
    for r in range(args.runs):
        for net in nets:
            for impl in impls:
                spec = {"kind": "torch" if impl == "torch" else "scratch", "net": net, "data": data[net],
                        "seed": args.seed, "threads": threads, "steps": args.steps, "warmup": args.warmup,
                        "engine": "reference" if impl == "scratch_reference" else args.engine, "first_loss": r == 0}
                res = common.run_worker(SCRIPT, spec, threads, timeout=3600)
                runs[net][impl].append(res)
                print(f"run {r + 1}/{args.runs} {net} {impl}: {res['epoch_s']:.2f} s/epoch (median step "
                      f"{res['step_median_ms']:.1f} ms), loss {res['loss']:.5f}, peak {res['peak_rss_mib']:.0f} MiB, "
                      f"load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)

    gemm_after = None if args.no_gemm else measure_gemm()
    rate = None
    if not args.no_gemm:
        rate = max(g["best"] for g in list(gemm_before.values()) + list(gemm_after.values()))
        report["gemm"] = {"machine_rate_flops_per_s": rate, "before_runs": gemm_before, "after_runs": gemm_after}
    results = {}
    for net in nets:
        entry = {"batch": NETWORKS[net]["batch"], "epoch_gemm_flops": epoch_gemm_flops(net),
                 "layers": [f"{spec} {a} -> {b}" for spec, a, b in layer_shapes(net)], "runs": runs[net]}
        if "torch" in runs[net]:
            entry["vs_torch"] = ratio_summary(runs[net]["scratch"], runs[net]["torch"])
            if "scratch_reference" in runs[net]:
                entry["reference_vs_torch"] = ratio_summary(runs[net]["scratch_reference"], runs[net]["torch"])
        if rate:
            for impl, rs in runs[net].items():
                entry[f"{impl}_gemm_fraction"] = entry["epoch_gemm_flops"] / rate / common.median([x["epoch_s"] for x in rs])
        if not args.no_breakdown:
            entry["breakdown"] = common.run_worker(SCRIPT, {"kind": "breakdown", "net": net, "data": data[net],
                                                            "seed": args.seed, "threads": threads, "steps": args.steps,
                                                            "warmup": args.warmup, "engine": args.engine}, threads,
                                                   timeout=3600)
        results[net] = entry
    report["results"] = results
    report["load_average_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
