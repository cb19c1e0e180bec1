"""A long run of the 784-200-200-50 VAE toward Burda et al.'s 86.76 nats, with the k = 5000 IS evaluation.

    python benchmarks/vae_recipe_search.py --epochs 300 --tag cosine300     # in the background: nohup ... &
    python benchmarks/vae_recipe_search.py --evaluate /tmp/vae-recipe/cosine300/model.npz --tag cosine300-eval
    python benchmarks/vae_recipe_search.py --init-from MODEL.npz --lr 5e-4 --seed 1 --epochs 600 --tag restart

The network is the IWAE paper's one-stochastic-layer MNIST VAE (784-200-200-50, mirrored decoder,
Bernoulli likelihood, k = 1 training) on scratch_ae's `VariationalAutoencoder` (ReLU hidden units,
its default; the paper used tanh).  Training: all 60,000 MNIST training images, dynamically binarised
(each step binarises its batch anew), Adam, a cosine learning-rate decay applied per step
(`scratch_ae.schedules.Cosine`), no KL warm-up, no early stopping: the recipe is fixed in advance and
nothing is chosen on the test set.

Evaluation: the 10,000 test images binarised ONCE with numpy.random.default_rng(0) (the same
binarisation as `scratch_ae.labs.vae`), the negative ELBO (one sampled z per image) and the
importance-sampled NLL with k = 5000 from q(z|x) (`VariationalAutoencoder.nll_importance_sampled`),
both in nats per image.  Every `--monitor-every` epochs the run writes a checkpoint under
`--checkpoint-dir` (outside the repository) and the JSON so far, with the negative ELBO of the first
2,000 binarised test images for the learning curve only (monitoring: never used to choose anything).

Output: benchmarks/results/vae-recipe-<tag>.json (config, history, monitor curve, final figures,
timings, machine) and the log, if started with nohup ... > benchmarks/results/vae-recipe-<tag>.log.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_BINARIZATION_SEED = 0  # as scratch_ae.labs.vae.TEST_BINARIZATION_SEED
PUBLISHED_NLL = 86.76       # Burda, Grosse & Salakhutdinov (2016), Table 1, VAE, k = 1, one stochastic layer


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True, help="names the outputs: benchmarks/results/vae-recipe-<tag>.json")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-fraction", type=float, default=0.0, help="the cosine's floor, as a fraction of --lr")
    p.add_argument("--activation", default="relu")
    p.add_argument("--threads", type=int, default=1, help="BLAS/Numba threads (1: robust on a shared 2-core machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--monitor-every", type=int, default=25)
    p.add_argument("--is-k", type=int, default=5000)
    p.add_argument("--is-images", type=int, default=10000)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only (a smoke test)")
    p.add_argument("--checkpoint-dir", type=Path, default=Path("/tmp/vae-recipe"))
    p.add_argument("--evaluate", type=Path, default=None, help="skip training: evaluate this checkpoint")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this checkpoint's weights (a warm restart: a new cosine cycle from --lr, "
                        "a fresh Adam state; use another --seed for fresh batch orders and binarisations)")
    p.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/vae-recipe-<tag>.json")
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from scratch_ae.data import load_dataset
    from scratch_ae.models.vae import VariationalAutoencoder, binarize
    from scratch_ae.optimizers import make_optimizer
    from scratch_ae.schedules import Cosine
    from scratch_ae.training import Trainer
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import common

    out = args.out or ROOT / "benchmarks" / "results" / f"vae-recipe-{args.tag}.json"
    ckpt_dir = args.checkpoint_dir / args.tag
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    X = train.images if args.limit is None else train.images[:args.limit]
    X_test = binarize(test.images, np.random.default_rng(TEST_BINARIZATION_SEED))
    report = {"command": " ".join(["python"] + sys.argv), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "machine": common.machine(), "load_average_start": os.getloadavg(), "threads": args.threads,
              "recipe": {"sizes": [784, 200, 200], "latent": 50, "activation": args.activation,
                         "likelihood": "bernoulli", "binarize": "dynamic", "optimizer": "adam", "lr": args.lr,
                         "lr_schedule": f"cosine per step, {args.lr} -> {args.lr * args.min_fraction:g}",
                         "batch_size": args.batch, "epochs": args.epochs, "seed": args.seed,
                         "train_images": int(X.shape[0]), "kl_warmup": 0},
              "published_nll_is": PUBLISHED_NLL, "test_binarization_seed": TEST_BINARIZATION_SEED}

    def write():
        report["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        tmp = str(out) + ".tmp"
        Path(tmp).write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, out)

    if args.evaluate is not None:
        model = VariationalAutoencoder.load(args.evaluate)
        report["evaluated_checkpoint"] = str(args.evaluate)
    else:
        if args.init_from is not None:
            # Trainer.fit trains the weights the model holds (VariationalAutoencoder.fit would rebuild them).
            model = VariationalAutoencoder.load(args.init_from)
            report["recipe"]["init_from"] = str(args.init_from)
        else:
            model = VariationalAutoencoder(sizes=(784, 200, 200), latent=50, activation=args.activation, lr=args.lr,
                                           batch_size=args.batch, epochs=args.epochs, seed=args.seed)
        monitor = []
        report["monitor"] = monitor
        t_start = time.perf_counter()

        def callback(trainer, epoch):
            done = epoch + 1
            if done % args.monitor_every == 0 or done == args.epochs:
                model.save(ckpt_dir / "model.npz")
                t0 = time.perf_counter()
                elbo = model.negative_elbo(X_test[:2000], rng=np.random.default_rng(1))
                monitor.append({"epoch": done, "test2000_neg_elbo": elbo, "elapsed_s": time.perf_counter() - t_start,
                                "lr": trainer.optimizer.lr, "load_average": os.getloadavg()})
                report["history"] = trainer.history
                write()
                print(f"monitor epoch {done}: test[:2000] -ELBO {elbo:.2f} ({time.perf_counter() - t0:.1f} s), "
                      f"{time.perf_counter() - t_start:.0f} s so far", flush=True)

        trainer = Trainer(model, make_optimizer("adam", args.lr), epochs=args.epochs, batch_size=args.batch,
                          seed=args.seed, progress=True, lr_schedule=Cosine(min_fraction=args.min_fraction),
                          schedule_per="step", callbacks=[model.kl_warmup_callback, callback])
        model.start_epoch(0)
        history = trainer.fit(X)
        report["history"] = history
        report["train_seconds"] = float(sum(history["epoch_seconds"]))
        report["train_wall_s"] = time.perf_counter() - t_start
        model.save(ckpt_dir / "model.npz")
        report["checkpoint"] = str(ckpt_dir / "model.npz")
        write()

    Xe = X_test[:args.is_images]
    t0 = time.perf_counter()
    report["final"] = {"test_images": int(Xe.shape[0]),
                       "neg_elbo": model.negative_elbo(Xe, rng=np.random.default_rng(1)),
                       **{f"parts_{k}": v for k, v in model.kl_and_reconstruction(Xe, rng=np.random.default_rng(1)).items()},
                       "active_units": model.active_units(Xe)}
    write()
    print(f"test -ELBO {report['final']['neg_elbo']:.3f}, active units {report['final']['active_units']}", flush=True)
    rng, values, chunk = np.random.default_rng(2), [], 1000  # chunks of whole 100-image batches: same draws as one call
    for start in range(0, Xe.shape[0], chunk):
        values.append(model.nll_importance_sampled(Xe[start:start + chunk], k=args.is_k, rng=rng, per_image=True))
        done = start + values[-1].shape[0]
        report["final"].update({"nll_is_images_done": done, "nll_is_so_far": float(np.concatenate(values).mean())})
        write()
        print(f"IS k={args.is_k}: {done} images, NLL so far {report['final']['nll_is_so_far']:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    nll = np.concatenate(values)
    report["final"].update({"nll_is": float(nll.mean()), "nll_is_standard_error": float(nll.std(ddof=1) / np.sqrt(len(nll))),
                            "is_samples": args.is_k, "evaluation_seconds": time.perf_counter() - t0})
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    report["load_average_end"] = os.getloadavg()
    write()
    print(f"final: test NLL (IS, k={args.is_k}) {report['final']['nll_is']:.3f} nats "
          f"+- {report['final']['nll_is_standard_error']:.3f}; published {PUBLISHED_NLL}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
