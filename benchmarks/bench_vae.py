"""One MNIST epoch of the 784-200-200-50 VAE: scratch-ae against the same model in PyTorch (CPU).

    python benchmarks/bench_vae.py --runs 5 --out benchmarks/results/vae-cpu-2threads.json

The model (the IWAE paper's one-stochastic-layer VAE; scratch_ae.models.vae.VariationalAutoencoder's
defaults): encoder 784-200-200 with ReLU, then Dense(200, 100) read as [mu | logvar] (logvar clamped
to [-30, 20]), z = mu + exp(logvar / 2) eps; decoder 50-200-200-784 with ReLU, logits; loss per image
= BCE from the logits summed over the 784 pixels + KL(N(mu, var) || N(0, I)) summed over the 50 units,
the batch mean.  Dynamic binarisation on both sides: every step binarises its batch anew, x_bin =
[u < x], u ~ U[0, 1).  Adam lr 1e-3, batch 100 (600 steps), the 60,000 training images.

Same everything: both start from scratch-ae's seeded initial weights (written to a file by a
scratch-ae process, copied into nn.Linear), see the same batches (the Trainer's seeded permutation)
and, by default ("torch"), the same uniforms u and the same eps, drawn per step from the generator
the Trainer hands the model, default_rng([seed, epoch, step, 1]) (u first, then eps), so the two
epochs' mean losses agree to rounding (checked: `loss` in each run).  "torch_native" is PyTorch as a
user would write it: torch.bernoulli(x) and torch.randn_like(mu) from torch's own generator.

Every measured epoch runs in its own fresh process, implementations interleaved (A B C A B C ...),
OpenBLAS, MKL and OpenMP pinned to --threads and torch.set_num_threads(--threads).  scratch-ae runs
its own Trainer with make_optimizer("adam", 1e-3, engine="auto") (the fast engine's Adam; what VariationalAutoencoder.fit
builds) and the fast engine's Dense + ReLU layers; PyTorch its default torch.optim.Adam.  A process reports
the epoch's wall and CPU seconds, its loss, and memory (ru_maxrss of the whole process, and the
epoch's own peak over what was resident before it; benchmarks/common.py).

With --chunks N, also interleaved chunks (robust on a loaded machine): each implementation trains in its
own long-lived process, and they take turns every --chunk-steps steps (30), N rounds; reported: the
median and 10th-percentile seconds per step scaled to an epoch, and the median paired ratio.

Where the time goes: scratch-ae's step taken apart (the library's own calls, in loss_and_grads'
order, a stopwatch around each), the same epoch's 17 matrix products alone (the GEMM floor), and
torch.profiler's self CPU time per operator for PyTorch.  Output: one JSON document (and --out).
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
LR, BATCH, LATENT = 1e-3, 100, 50
SIZES = [784, 200, 200]
ENCODER = [(784, 200), (200, 200), (200, 2 * LATENT)]
DECODER = [(LATENT, 200), (200, 200), (200, 784)]


def epoch_gemm_flops(n_images):
    """FLOPs of one epoch's matrix products: forward, grad_W, and grad_x except for the first layer."""
    per_image = sum(2 * a * b * (2 if i == 0 else 3) for i, (a, b) in enumerate(ENCODER + DECODER))
    return per_image * n_images


# ============================================================================ workers (one process each)
def worker_weights(spec):
    """Write scratch-ae's initial weights (seeded) to spec["path"] as an .npz."""
    from scratch_ae.models.vae import VariationalAutoencoder
    model = VariationalAutoencoder(sizes=SIZES, latent=LATENT, seed=spec["seed"])
    np.savez(spec["path"], **model.state_arrays())
    return {"names": sorted(model.state_arrays())}


def _scratch_model(spec):
    from scratch_ae.models.vae import VariationalAutoencoder
    return VariationalAutoencoder(sizes=SIZES, latent=LATENT, lr=LR, batch_size=spec["batch"], seed=spec["seed"],
                                  engine=spec.get("engine", "auto"))


def _scratch_trainer(model, spec):
    from scratch_ae.optimizers import make_optimizer
    from scratch_ae.training import Trainer
    model.start_epoch(0)
    return Trainer(model, make_optimizer("adam", LR, engine=spec.get("engine", "auto")), epochs=1, batch_size=spec["batch"], seed=spec["seed"],
                   progress=False, callbacks=[model.kl_warmup_callback])


def worker_scratch(spec):
    """One epoch of scratch-ae's own Trainer, as VariationalAutoencoder.fit builds it."""
    X = common.load_mnist_train(spec.get("limit"))
    model = _scratch_model(spec)
    if spec.get("warmup_steps"):  # a throwaway model: Numba's cache loaded, BLAS threads started
        throwaway = _scratch_model(dict(spec, seed=spec["seed"] + 1))
        _scratch_trainer(throwaway, spec).fit(X[:spec["warmup_steps"] * spec["batch"]])
        del throwaway
    trainer = _scratch_trainer(model, spec)
    rss_before = common.current_rss_kib()
    reset = common.reset_peak_rss()
    cpu0 = time.process_time()
    history = trainer.fit(X)
    out = {"epoch_s": history["epoch_seconds"][0], "epoch_cpu_s": time.process_time() - cpu0,
           "loss": history["train_loss"][0]}
    out.update(common.memory_report(rss_before, reset))
    out["blas"] = common.blas_info()
    return out


def _torch_net(weights_path):
    import torch
    from torch import nn
    arrays = np.load(weights_path)

    def stack(prefix, shapes):
        layers = []
        for j, (a, b) in enumerate(shapes):
            lin = nn.Linear(a, b)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(arrays[f"{prefix}.{2 * j}.W"].T)))
                lin.bias.copy_(torch.from_numpy(arrays[f"{prefix}.{2 * j}.b"]))
            layers.append(lin)
            if j + 1 < len(shapes):
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    return stack("encoder", ENCODER), stack("decoder", DECODER)


def torch_epoch(encoder, decoder, opt, Xt, batch, seed, draws, sync=lambda: None):
    """One PyTorch epoch in the Trainer's batch order; returns (seconds, mean loss).

    draws "numpy": u and eps from default_rng([seed, 0, step, 1]) exactly as scratch-ae's model draws
    them; "native": torch.bernoulli and torch.randn_like."""
    import torch
    import torch.nn.functional as F
    n = Xt.shape[0]
    sync()
    t0 = time.perf_counter()
    order = torch.from_numpy(np.random.default_rng([seed, 0]).permutation(n))
    loss_sum = torch.zeros((), dtype=torch.float64)
    for step in range(math.ceil(n / batch)):
        xb = Xt[order[step * batch:(step + 1) * batch]]
        if draws == "numpy":
            rng = np.random.default_rng([seed, 0, step, 1])
            x = (torch.from_numpy(rng.random(tuple(xb.shape))) < xb).to(torch.float32)
            eps = torch.from_numpy(rng.standard_normal((xb.shape[0], LATENT)).astype(np.float32))
        else:
            x = torch.bernoulli(xb)
            eps = None
        h = encoder(x)
        mu, logvar = h[:, :LATENT], h[:, LATENT:].clamp(-30.0, 20.0)
        if eps is None:
            eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = decoder(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum()
        loss = (rec + kl) / x.shape[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * x.shape[0]
    return time.perf_counter() - t0, float(loss_sum) / n


def _torch_setup(spec):
    import torch
    encoder, decoder = _torch_net(spec["weights"])
    opt = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=LR)
    return encoder, decoder, opt


def worker_torch(spec):
    """The same epoch in PyTorch: same data, weights, batches, optimizer, threads (and by default the same draws)."""
    import torch
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    X = common.load_mnist_train(spec.get("limit"))
    Xt = torch.from_numpy(X)
    if spec.get("warmup_steps"):
        throwaway = _torch_setup(spec)
        torch_epoch(*throwaway, Xt[:spec["warmup_steps"] * spec["batch"]], spec["batch"], spec["seed"] + 1,
                    spec["draws"])
        del throwaway
    encoder, decoder, opt = _torch_setup(spec)
    rss_before = common.current_rss_kib()
    reset = common.reset_peak_rss()
    cpu0 = time.process_time()
    epoch_s, loss = torch_epoch(encoder, decoder, opt, Xt, spec["batch"], spec["seed"], spec["draws"])
    out = {"epoch_s": epoch_s, "epoch_cpu_s": time.process_time() - cpu0, "loss": loss, "torch": torch.__version__,
           "torch_threads": torch.get_num_threads()}
    out.update(common.memory_report(rss_before, reset))
    return out


def worker_breakdown(spec):
    """scratch-ae's step taken apart: VariationalAutoencoder.loss_and_grads' calls, each timed, then the update.

    After the same throwaway warm-up steps as the epoch runs (without them the first step's loading of
    Numba's compiled loops, about a second, lands in the encoder forward and in Adam).

    The calls are the library's own, in its order (vae.py loss_and_grads); only the stopwatch is added.
    Also timed: the 17 matrix products of a step alone, with the step's shapes (the GEMM floor)."""
    X = common.load_mnist_train(spec.get("limit"))
    if spec.get("warmup_steps"):  # as in the epoch runs: Numba's cached loops loaded, BLAS threads started
        throwaway = _scratch_model(dict(spec, seed=spec["seed"] + 1))
        _scratch_trainer(throwaway, spec).fit(X[:spec["warmup_steps"] * spec["batch"]])
        del throwaway
    model = _scratch_model(spec)
    trainer = _scratch_trainer(model, spec)
    bd = common.Breakdown().attach_model(model).attach_call(trainer.optimizer, "step", "optimizer.step")
    n, batch = X.shape[0], spec["batch"]
    steps = math.ceil(n / batch)
    history = trainer.fit(X)
    total = history["epoch_seconds"][0]
    phases = bd.report(total)

    # The GEMM floor: the step's 17 products alone, same shapes, preallocated outputs.
    rng = np.random.default_rng(0)
    layers = ENCODER + DECODER
    xs = [rng.random((batch, a), dtype=np.float32) for a, _ in layers]
    Ws = [rng.standard_normal((a, b), dtype=np.float32) for a, b in layers]
    ds = [rng.standard_normal((batch, b), dtype=np.float32) for _, b in layers]
    outs = [np.empty((batch, b), np.float32) for _, b in layers]
    gWs = [np.empty((a, b), np.float32) for a, b in layers]
    gxs = [np.empty((batch, a), np.float32) for a, _ in layers]
    gemm_steps = min(steps, spec.get("gemm_steps", 200))
    for _ in range(5):
        for i in range(len(layers)):
            np.matmul(xs[i], Ws[i], out=outs[i])
    g0 = time.perf_counter()
    for _ in range(gemm_steps):
        for i in range(len(layers)):
            np.matmul(xs[i], Ws[i], out=outs[i])
            np.matmul(xs[i].T, ds[i], out=gWs[i])
            if i != 0:
                np.matmul(ds[i], Ws[i].T, out=gxs[i])
    gemm_epoch = (time.perf_counter() - g0) * steps / gemm_steps
    flops = epoch_gemm_flops(n)
    return {"epoch_s": total, "loss": history["train_loss"][0], "phases_s": phases,
            "phases_fraction": {k: v / total for k, v in phases.items()},
            "gemm_only_epoch_s": gemm_epoch, "gemm_only_flops_per_s": flops / gemm_epoch,
            "epoch_gemm_flops": flops}


def worker_torch_profile(spec):
    """torch.profiler's self CPU time per operator over `steps` PyTorch steps (profiling slows it; read the shares)."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    torch.set_num_threads(spec["threads"])
    X = common.load_mnist_train(spec.get("limit"))
    Xt = torch.from_numpy(X[:spec.get("steps", 200) * spec["batch"]])
    encoder, decoder, opt = _torch_setup(spec)
    torch_epoch(encoder, decoder, opt, Xt[:10 * spec["batch"]], spec["batch"], spec["seed"] + 1, spec["draws"])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        seconds, _ = torch_epoch(encoder, decoder, opt, Xt, spec["batch"], spec["seed"], spec["draws"])
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    return {"steps": int(Xt.shape[0] // spec["batch"]), "profiled_seconds": seconds,
            "self_cpu_fraction": {e.key: e.self_cpu_time_total / total for e in top},
            "self_cpu_ms": {e.key: e.self_cpu_time_total / 1e3 for e in top}}


class ScratchStepper:
    """scratch-ae's training steps one after another, as Trainer.fit takes them (epochs wrap around)."""

    def __init__(self, spec, X):
        from scratch_ae.optimizers import make_optimizer
        self.model = _scratch_model(spec)
        self.model.start_epoch(0)
        self.optimizer = make_optimizer("adam", LR)
        self.params = self.model.parameters()
        self.X, self.batch, self.seed = X, spec["batch"], spec["seed"]
        self.steps = math.ceil(X.shape[0] / self.batch)
        self.epoch = self.step = 0
        self.order = np.random.default_rng([self.seed, 0]).permutation(X.shape[0])

    def run(self, n):
        t0 = time.perf_counter()
        for _ in range(n):
            xb = self.X[self.order[self.step * self.batch:(self.step + 1) * self.batch]]
            loss, grads = self.model.loss_and_grads(xb, rng=np.random.default_rng([self.seed, self.epoch, self.step, 1]))
            self.optimizer.step(self.params, grads)
            self._advance()
        return time.perf_counter() - t0, float(loss)

    def _advance(self):
        self.step += 1
        if self.step == self.steps:
            self.epoch, self.step = self.epoch + 1, 0
            self.order = np.random.default_rng([self.seed, self.epoch]).permutation(self.X.shape[0])


class TorchStepper(ScratchStepper):
    """The same steps in PyTorch (the loop body of torch_epoch; draws as spec["draws"])."""

    def __init__(self, spec, X):
        import torch
        torch.set_num_threads(spec["threads"])
        torch.manual_seed(spec["seed"])
        self.torch = torch
        self.encoder, self.decoder, self.opt = _torch_setup(spec)
        self.draws = spec["draws"]
        self.X, self.batch, self.seed = torch.from_numpy(X), spec["batch"], spec["seed"]
        self.steps = math.ceil(X.shape[0] / self.batch)
        self.epoch = self.step = 0
        self.order = np.random.default_rng([self.seed, 0]).permutation(X.shape[0])

    def run(self, n):
        import torch.nn.functional as F
        torch = self.torch
        t0 = time.perf_counter()
        for _ in range(n):
            xb = self.X[torch.from_numpy(self.order[self.step * self.batch:(self.step + 1) * self.batch])]
            if self.draws == "numpy":
                rng = np.random.default_rng([self.seed, self.epoch, self.step, 1])
                x = (torch.from_numpy(rng.random(tuple(xb.shape))) < xb).to(torch.float32)
                eps = torch.from_numpy(rng.standard_normal((xb.shape[0], LATENT)).astype(np.float32))
            else:
                x = torch.bernoulli(xb)
                eps = None
            h = self.encoder(x)
            mu, logvar = h[:, :LATENT], h[:, LATENT:].clamp(-30.0, 20.0)
            if eps is None:
                eps = torch.randn_like(mu)
            z = mu + torch.exp(0.5 * logvar) * eps
            rec = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
            kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum()
            loss = (rec + kl) / x.shape[0]
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self._advance()
        return time.perf_counter() - t0, float(loss.detach())


def serve(spec):
    """A long-lived worker: reads a number of steps per stdin line, trains that many, answers {"s", "loss"}."""
    X = common.load_mnist_train(spec.get("limit"))
    stepper = (ScratchStepper if spec["impl"] == "scratch" else TorchStepper)(spec, X)
    stepper.run(spec.get("warmup_steps") or 2)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        seconds, loss = stepper.run(int(line))
        print(json.dumps({"s": seconds, "loss": loss}), flush=True)


def chunked(base, impls, chunks, chunk_steps, threads):
    """Interleaved chunks: each implementation in its own long-lived process, taking turns every chunk_steps steps.

    Load on a shared machine changes on a scale of seconds; a chunk of ~30 steps lasts a fraction of one, so
    two neighbouring chunks see nearly the same machine.  Reported per implementation: the median and the
    10th percentile of the seconds per step, scaled to one epoch, and the median over rounds of the paired
    ratio (scratch's chunk over the other's in the same round)."""
    import subprocess
    workers = {}
    for impl in impls:
        spec = dict(base, impl="scratch" if impl == "scratch" else "torch",
                    draws="native" if impl == "torch_native" else "numpy")
        workers[impl] = subprocess.Popen([sys.executable, str(SCRIPT), "--serve", json.dumps(spec)],
                                         env=common.thread_env(threads), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
    for w in workers.values():
        json.loads(w.stdout.readline())
    times = {impl: [] for impl in impls}
    losses = {impl: None for impl in impls}
    for _ in range(chunks):
        for impl, w in workers.items():
            w.stdin.write(f"{chunk_steps}\n")
            w.stdin.flush()
            answer = json.loads(w.stdout.readline())
            times[impl].append(answer["s"] / chunk_steps)
            losses[impl] = answer["loss"]
    for w in workers.values():
        w.stdin.close()
        w.wait()
    steps = math.ceil((base.get("limit") or 60000) / base["batch"])
    out = {"chunks": chunks, "chunk_steps": chunk_steps}
    for impl, ts in times.items():
        ts = np.asarray(ts)
        out[impl] = {"median_epoch_s": float(np.median(ts)) * steps, "p10_epoch_s": float(np.percentile(ts, 10)) * steps,
                     "min_epoch_s": float(ts.min()) * steps, "last_loss": losses[impl]}
    for other in impls:
        if other != "scratch" and "scratch" in times:
            paired = np.asarray(times["scratch"]) / np.asarray(times[other])
            out[f"ratio_median_scratch_over_{other}"] = out["scratch"]["median_epoch_s"] / out[other]["median_epoch_s"]
            out[f"ratio_p10_scratch_over_{other}"] = out["scratch"]["p10_epoch_s"] / out[other]["p10_epoch_s"]
            out[f"paired_ratio_median_scratch_over_{other}"] = float(np.median(paired))
            out[f"paired_ratio_quartiles_scratch_over_{other}"] = [float(np.percentile(paired, q)) for q in (25, 75)]
    return out


WORKERS = {"weights": worker_weights, "scratch": worker_scratch, "torch": worker_torch, "breakdown": worker_breakdown,
           "torch_profile": worker_torch_profile}


# ============================================================================ the driver
def summarise(runs):
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float)) and not isinstance(runs[0][k], bool)]
    out = {f"median_{k}": common.median([r[k] for r in runs]) for k in keys}
    out["best_epoch_s"] = min(r["epoch_s"] for r in runs)
    out["epoch_s_runs"] = [round(r["epoch_s"], 4) for r in runs]
    out["loss_runs"] = [round(r["loss"], 5) for r in runs]
    for k in ("blas", "torch", "torch_threads"):
        if k in runs[0]:
            out[k] = runs[0][k]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="measured epochs per implementation (default 5)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--limit", type=int, default=None, help="only the first N training images (a partial epoch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--impls", default="scratch,torch,torch_native",
                   help="comma-separated: scratch, torch (the same draws as scratch-ae), torch_native (torch's own)")
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument("--chunks", type=int, default=0,
                   help="also (or, with --runs 0, only) run the interleaved-chunks comparison: this many rounds")
    p.add_argument("--chunk-steps", type=int, default=30, help="steps per chunk (default 30)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        serve(json.loads(args.serve))
        return 0
    if args.worker is not None:
        spec = json.loads(args.worker)
        print(json.dumps(WORKERS[spec["kind"]](spec)))
        return 0

    threads, n_images = args.threads, args.limit or 60000
    impls = args.impls.split(",")
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join([Path(sys.executable).name] + sys.argv),
              "machine": common.machine(), "threads": threads, "runs": args.runs, "batch": args.batch,
              "images_per_epoch": n_images, "numba": common.numba_version(), "model": "VAE 784-200-200-50, Bernoulli, "
              "dynamic binarisation, Adam 1e-3", "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "init.npz")
        common.run_worker(SCRIPT, {"kind": "weights", "seed": args.seed, "path": weights}, threads)
        base = {"seed": args.seed, "threads": threads, "batch": args.batch, "limit": args.limit,
                "warmup_steps": args.warmup_steps, "weights": weights}
        runs = {impl: [] for impl in impls}
        for r in range(args.runs):  # interleaved: A B C A B C ...
            for impl in impls:
                spec = dict(base, kind="scratch" if impl == "scratch" else "torch",
                            draws="native" if impl == "torch_native" else "numpy")
                res = common.run_worker(SCRIPT, spec, threads)
                res["load_average"] = os.getloadavg()[0]
                runs[impl].append(res)
                print(f"run {r + 1}/{args.runs} {impl}: {res['epoch_s']:.3f} s (cpu {res['epoch_cpu_s']:.2f} s), "
                      f"loss {res['loss']:.4f}, peak {res['peak_rss_mib']:.0f} MiB, load {res['load_average']:.2f}",
                      file=sys.stderr, flush=True)
        flops = epoch_gemm_flops(n_images)
        results = {"epoch_gemm_flops": flops}
        for impl, rs in runs.items():
            if rs:
                results[impl] = summarise(rs)
        for other in ("torch", "torch_native"):
            if "scratch" in results and other in results:
                s, t = results["scratch"], results[other]
                results[f"ratio_scratch_over_{other}"] = s["median_epoch_s"] / t["median_epoch_s"]
                results[f"ratio_best_scratch_over_best_{other}"] = s["best_epoch_s"] / t["best_epoch_s"]
                results[f"cpu_time_ratio_scratch_over_{other}"] = s["median_epoch_cpu_s"] / t["median_epoch_cpu_s"]
                results[f"peak_rss_ratio_scratch_over_{other}"] = s["median_peak_rss_mib"] / t["median_peak_rss_mib"]
                # paired by round: the two ran back to back, so they shared the machine's state
                results[f"paired_ratios_scratch_over_{other}"] = [
                    round(a["epoch_s"] / b["epoch_s"], 3) for a, b in zip(runs["scratch"], runs[other])]
        if args.chunks:
            results["chunked"] = chunked(base, impls, args.chunks, args.chunk_steps, threads)
        if not args.no_breakdown:
            results["breakdown_scratch"] = common.run_worker(SCRIPT, dict(base, kind="breakdown"), threads)
            results["profile_torch"] = common.run_worker(SCRIPT, dict(base, kind="torch_profile", draws="numpy"), threads)
    report["results"] = results
    report["load_average_after"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
