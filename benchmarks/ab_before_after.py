"""A/B of issue 20: the library before the fast engine moved out (commit f880101) against after,
each network against PyTorch CPU, in one run on one machine, interleaved.

    python benchmarks/ab_before_after.py --quick          # smoke test: partial epochs, one round
    python benchmarks/ab_before_after.py                  # full: 3 rounds, ~10-15 minutes on 2 cores
    python benchmarks/ab_before_after.py --before /work/before --rounds 3 --out ab.json

Sides, each one fresh process per measurement, in the order before, after, torch (, torch-flush)
within each round, so a slow spell on a shared machine hits every side alike:

    before       `<before>/benchmarks/bench_{train,vae,conv}.py --worker` with PYTHONPATH=<before>:
                 the old main with its own defaults (fused layers and Adam(fused=True)).
    after        this tree, engine="auto": Autoencoder / VariationalAutoencoder with engine="auto"
                 through the Trainer; the conv networks as a reference Sequential converted by
                 scratch_ae.fast.to_fast (what ConvAutoencoder runs for engine="fast") with
                 Adam(engine="auto").
    torch        the same networks, weights, batches and Adam in PyTorch CPU (bench_*.worker_torch).
    torch-flush  conv networks only: the same with torch.set_flush_denormal(True).

Networks: standard dense 784-256-784 (ReLU, MSE, batch 100) and deep dense 784-1000-500-250-30
(batch 256) as bench_train; the VAE 784-200-200-(50)-200-200-784 as bench_vae (one epoch of
60,000 MNIST images each); stride2 (coloured MNIST, batch 128) and pooled (MNIST, batch 100) as
bench_conv, whose epoch is extrapolated from --steps timed steps.  Reported: the median epoch
seconds per side, ours/PyTorch for before and after, and after/before.  Issue 20 asks for every
ratio within 5% of before.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

SCRIPT = Path(__file__).resolve()
LR = 1e-3
NETS = ("standard", "deep", "vae", "stride2", "pooled")
CONV = ("stride2", "pooled")
SCRIPT_OF = {"standard": "bench_train.py", "deep": "bench_train.py", "vae": "bench_vae.py",
             "stride2": "bench_conv.py", "pooled": "bench_conv.py"}


def env_for(root, threads):
    env = common.thread_env(threads)
    env["PYTHONPATH"] = str(root)  # one scratch_ae only: the one under test
    return env


def run(cmd, env, timeout=3600):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ============================================================================ workers (this tree)
def worker_after_dense(spec):
    """One epoch of Autoencoder(engine="auto") through the Trainer, as bench_train's scratch worker."""
    X = common.load_mnist_train(spec.get("limit"))
    from scratch_ae.models import Autoencoder
    from scratch_ae.optimizers import Adam
    from scratch_ae.training import Trainer
    engine = spec.get("engine", "auto")
    build = lambda seed: Autoencoder(sizes=spec["sizes"], activation="relu", output_activation="relu", loss="mse",
                                     seed=seed, engine=engine)
    trainer = lambda m, X: Trainer(m, Adam(LR, engine=engine), epochs=1, batch_size=spec["batch"],
                                   seed=spec["seed"], progress=False)
    trainer(build(spec["seed"] + 1), None).fit(X[:spec["warmup_steps"] * spec["batch"]])
    model = build(spec["seed"])
    cpu0 = time.process_time()
    history = trainer(model, X).fit(X)
    return {"epoch_s": history["epoch_seconds"][0], "epoch_cpu_s": time.process_time() - cpu0,
            "loss": history["train_loss"][0], "engine": getattr(model, "engine_", None)}


def worker_after_vae(spec):
    """One epoch of VariationalAutoencoder(engine="auto"), as bench_vae's scratch worker."""
    import bench_vae
    X = common.load_mnist_train(spec.get("limit"))
    from scratch_ae.models import VariationalAutoencoder
    from scratch_ae.optimizers import make_optimizer
    from scratch_ae.training import Trainer
    engine = spec.get("engine", "auto")

    def fit(seed, X):
        model = VariationalAutoencoder(sizes=bench_vae.SIZES, latent=bench_vae.LATENT, lr=LR, batch_size=spec["batch"],
                                       seed=seed, engine=engine)
        model.start_epoch(0)
        t = Trainer(model, make_optimizer("adam", LR, engine=engine), epochs=1, batch_size=spec["batch"],
                    seed=spec["seed"], progress=False, callbacks=[model.kl_warmup_callback])
        return model, t.fit(X)
    fit(spec["seed"] + 1, X[:spec["warmup_steps"] * spec["batch"]])
    cpu0 = time.process_time()
    model, history = fit(spec["seed"], X)
    return {"epoch_s": history["epoch_seconds"][0], "epoch_cpu_s": time.process_time() - cpu0,
            "loss": history["train_loss"][0], "engine": getattr(model, "engine_", None)}


def worker_after_conv(spec):
    """bench_conv's own scratch worker: the network a reference Sequential run through fast.to_fast
    for engine="auto" (bench_conv.build_run), Adam(engine="auto")."""
    import bench_conv
    return bench_conv.worker_scratch(dict(spec, engine=spec.get("engine", "auto")))


def worker_after_breakdown(spec):
    """Where the after side's step time goes: each layer's forward/backward, the loss and the Adam
    step timed on their own (common.Breakdown) over the epoch (dense, VAE) or the timed steps (conv)."""
    bd = common.Breakdown()
    if spec["net"] in CONV:
        import bench_conv
        bench_conv.set_threads(spec["threads"])
        batch = bench_conv.NETWORKS[spec["net"]]["batch"]
        X = np.load(spec["data"])
        _, run_network, params, grads, optimizer = bench_conv.build_run(spec["net"], spec["seed"])
        step = lambda s: bench_conv.scratch_step(run_network, params, grads, optimizer, X[s * batch:(s + 1) * batch])
        for s in range(spec["warmup"]):
            step(s)
        bd.attach(run_network).attach_call(optimizer, "step", "optimizer.step")
        t0 = time.perf_counter()
        for s in range(spec["warmup"], spec["warmup"] + spec["steps"]):
            step(s)
        total, steps = time.perf_counter() - t0, spec["steps"]
    else:
        from scratch_ae.models import Autoencoder, VariationalAutoencoder
        from scratch_ae.optimizers import Adam
        from scratch_ae.training import Trainer
        X = common.load_mnist_train(spec.get("limit"))
        if spec["net"] == "vae":
            import bench_vae
            build = lambda seed: VariationalAutoencoder(sizes=bench_vae.SIZES, latent=bench_vae.LATENT, lr=LR,
                                                        batch_size=spec["batch"], seed=seed)
        else:
            build = lambda seed: Autoencoder(sizes=spec["sizes"], activation="relu", output_activation="relu",
                                             loss="mse", seed=seed)

        def fit(model, X):
            callbacks = [model.kl_warmup_callback] if spec["net"] == "vae" else []
            if spec["net"] == "vae":
                model.start_epoch(0)
            optimizer = Adam(LR)
            bd.attach_call(optimizer, "step", "optimizer.step")
            return Trainer(model, optimizer, epochs=1, batch_size=spec["batch"], seed=spec["seed"],
                           progress=False, callbacks=callbacks).fit(X)
        Trainer(build(spec["seed"] + 1), Adam(LR), epochs=1, batch_size=spec["batch"], progress=False).fit(
            X[:spec["warmup_steps"] * spec["batch"]])
        model = build(spec["seed"])
        bd.attach_model(model)
        total = fit(model, X)["epoch_seconds"][0]
        steps = -(-X.shape[0] // spec["batch"])
    return {"total_s": total, "steps": steps, "ms_per_step": {k: v * 1e3 for k, v in bd.report(total, steps).items()},
            "calls": bd.calls}


def worker_torch(spec):
    """PyTorch's side: the bench scripts' own torch workers (this tree's copies)."""
    import torch
    if spec.get("flush"):
        torch.set_flush_denormal(True)
    net = spec["net"]
    if net in CONV:
        import bench_conv
        return bench_conv.worker_torch(spec)
    if net == "vae":
        import bench_vae
        return bench_vae.worker_torch(spec)
    import bench_train
    return bench_train.worker_torch(spec)


WORKERS = {"after_dense": worker_after_dense, "after_vae": worker_after_vae, "after_conv": worker_after_conv,
           "after_breakdown": worker_after_breakdown, "torch": worker_torch}


# ============================================================================ the parent
def specs(net, args, data, weights):
    """(before spec for the old script's worker, spec for ours) for one network."""
    if net in ("standard", "deep"):
        cfg = common.NETWORKS[net]
        base = {"sizes": cfg["sizes"], "batch": cfg["batch"], "seed": args.seed, "threads": args.threads,
                "backend": "numpy", "limit": args.limit, "warmup_steps": 5}
        return dict(base, kind="scratch", optimizer="fused", layers="fused"), dict(base, kind="after_dense", net=net), dict(base, net=net)
    if net == "vae":
        base = {"batch": 100, "seed": args.seed, "threads": args.threads, "limit": args.limit, "warmup_steps": 5,
                "draws": "numpy", "weights": weights}
        return dict(base, kind="scratch"), dict(base, kind="after_vae", net=net), dict(base, net=net)
    base = {"net": net, "data": data[net], "seed": args.seed, "threads": args.threads, "warmup": args.warmup,
            "steps": args.steps}
    return dict(base, kind="scratch"), dict(base, kind="after_conv"), dict(base)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, default=Path("/work/before"), help="checkout of the old main (default /work/before)")
    p.add_argument("--networks", default=",".join(NETS), help=f"comma-separated from {', '.join(NETS)}")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--steps", type=int, default=150, help="timed steps per conv process (default 150)")
    p.add_argument("--warmup", type=int, default=5, help="untimed conv steps first")
    p.add_argument("--limit", type=int, default=None, help="first N training images only (dense and VAE)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-before", action="store_true", help="leave the before side out")
    p.add_argument("--skip-after", action="store_true", help="leave the after side out")
    p.add_argument("--no-breakdown", action="store_true", help="skip the after side's per-layer breakdown")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 round, 3,000 images, 10 conv steps")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        spec = json.loads(args.worker)
        print(json.dumps(WORKERS[spec["kind"]](spec)))
        return 0
    if args.quick:
        args.rounds, args.limit, args.steps, args.warmup = 1, 3000, 10, 2
    nets = args.networks.split(",")
    bad = [n for n in nets if n not in NETS]
    if bad:
        p.error(f"--networks: unknown {', '.join(bad)}; expected some of {', '.join(NETS)}")
    if not (args.before / "scratch_ae").is_dir() and not args.skip_before:
        p.error(f"--before: {args.before} holds no scratch_ae/ (expected a checkout of the old main)")
    here_env, before_env = env_for(common.ROOT, args.threads), env_for(args.before, args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="ab-"))
    data = {}
    for net in nets:
        if net in CONV:  # the same batches for every side, cut by the old script's own code
            data[net] = run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import bench_conv, json; "
                             "print(json.dumps(bench_conv.prepare_data(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))",
                             str(common.ROOT / "benchmarks"), net, str(args.seed), str(args.steps + args.warmup), str(tmp)],
                            here_env)
    weights = str(tmp / "vae-weights.npz")
    if "vae" in nets:  # PyTorch's VAE starts from scratch-ae's initial weights, written by the old script
        run([sys.executable, str(args.before / "benchmarks" / "bench_vae.py"), "--worker",
             json.dumps({"kind": "weights", "seed": args.seed, "path": weights})], before_env)
    sides = ([] if args.skip_before else ["before"]) + ([] if args.skip_after else ["after"]) + ["torch"]
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": common.machine(), "before": str(args.before),
              "args": {k: str(v) for k, v in vars(args).items() if k != "worker"}, "runs": {n: {} for n in nets}}
    print(f"# {report['machine']['cpu']}, {report['machine']['affinity']} usable cores, threads {args.threads}", flush=True)
    for r in range(args.rounds):
        for net in nets:
            before_spec, after_spec, torch_spec = specs(net, args, data, weights)
            todo = list(sides) + (["torch-flush"] if net in CONV else [])
            for side in todo:
                if side == "before":
                    res = run([sys.executable, str(args.before / "benchmarks" / SCRIPT_OF[net]), "--worker",
                               json.dumps(before_spec)], before_env)
                elif side == "after":
                    res = run([sys.executable, str(SCRIPT), "--worker", json.dumps(after_spec)], here_env)
                else:
                    res = run([sys.executable, str(SCRIPT), "--worker",
                               json.dumps(dict(torch_spec, kind="torch", flush=side == "torch-flush"))], here_env)
                report["runs"][net].setdefault(side, []).append(res)
                print(f"round {r + 1} {net:8s} {side:11s} epoch {res['epoch_s']:8.2f} s  loss {res['loss']:.5f}", flush=True)
    if not (args.skip_after or args.no_breakdown):
        report["breakdown_after"] = {}
        for net in nets:
            _, after_spec, _ = specs(net, args, data, weights)
            bd = run([sys.executable, str(SCRIPT), "--worker", json.dumps(dict(after_spec, kind="after_breakdown"))],
                     here_env)
            report["breakdown_after"][net] = bd
            top = list(bd["ms_per_step"].items())[:6]
            print(f"breakdown {net:8s} {bd['total_s'] / bd['steps'] * 1e3:7.2f} ms/step: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in top), flush=True)
    summary = {}
    for net in nets:
        med = {side: common.median([x["epoch_s"] for x in runs]) for side, runs in report["runs"][net].items()}
        row = {"epoch_s": med}
        for side in ("before", "after"):
            if side in med:
                row[f"{side}/torch"] = med[side] / med["torch"]
                if "torch-flush" in med:
                    row[f"{side}/torch-flush"] = med[side] / med["torch-flush"]
        if "before" in med and "after" in med:
            row["after/before"] = med["after"] / med["before"]
        summary[net] = row
    report["summary"] = summary
    print("\nnetwork   " + "  ".join(f"{s:>11s}" for s in ("before s", "after s", "torch s", "flush s", "before/pt",
                                                          "after/pt", "after/before")))
    for net, row in summary.items():
        m = row["epoch_s"]
        cells = [m.get("before"), m.get("after"), m.get("torch"), m.get("torch-flush"), row.get("before/torch"),
                 row.get("after/torch"), row.get("after/before")]
        print(f"{net:9s} " + "  ".join(f"{c:11.3f}" if c is not None else f"{'-':>11s}" for c in cells))
    print("(ratios: ours / PyTorch CPU epoch time, < 1 is faster than PyTorch; conv rows also vs "
          "PyTorch with set_flush_denormal(True) in the JSON)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
