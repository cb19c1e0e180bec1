"""Choose the deep-30 recipe on a validation split, never on the test set.

Trains the 784-1000-500-250-30 autoencoder (ReLU, linear code, sigmoid + BCE,
cosine lr 1e-3 -> 1e-5) on 54,000 training images and logs the squared error
per image on the other 6,000 (validation) every 5 epochs; the test error is
logged beside it only to be reported, not to choose.  One recipe per process:

    python benchmarks/deep30_recipe_search.py NAME --optimizer adamw --weight-decay 0.1 --batch-size 128

writes benchmarks/results/deep30-recipe-NAME.json.  The recipes tried and their
curves are in RESULTS.md; the winner became `scratch-ae lab deep-30`'s default.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from scratch_ae.data import load_dataset  # noqa: E402
from scratch_ae.labs.deep30 import SIZES, cosine_lr  # noqa: E402
from scratch_ae.metrics import reconstruction_metrics  # noqa: E402
from scratch_ae.models import Autoencoder  # noqa: E402
from scratch_ae.optimizers import make_optimizer  # noqa: E402
from scratch_ae.training import Trainer  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name")
    p.add_argument("--optimizer", choices=["adam", "adamw"], default="adamw")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled decay")
    p.add_argument("--noise", default=None, help="input corruption, e.g. gaussian:0.1")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--every", type=int, default=5)
    args = p.parse_args(argv)

    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    order = np.random.default_rng(123).permutation(train.images.shape[0])
    X_train, X_val = train.images[order[:54000]], train.images[order[54000:]]
    model = Autoencoder(sizes=SIZES, activation="relu", code_activation="identity", output_activation="sigmoid",
                        loss="bce", seed=0)
    log, out = [], HERE / "results" / f"deep30-recipe-{args.name}.json"

    def record(trainer, epoch):
        if (epoch + 1) % args.every and epoch + 1 != args.epochs:
            return
        log.append({"epoch": epoch + 1, "val": reconstruction_metrics(model, X_val)["sse_per_image"],
                    "test": reconstruction_metrics(model, test.images)["sse_per_image"],
                    "train_first_6000": reconstruction_metrics(model, X_train[:6000])["sse_per_image"],
                    "time": time.strftime("%H:%M:%S")})
        print(json.dumps(log[-1]), flush=True)
        out.write_text(json.dumps({"recipe": vars(args), "split": "54000 train / 6000 validation, seed 123",
                                   "log": log}, indent=1) + "\n")

    Trainer(model, make_optimizer(args.optimizer, 1e-3, args.weight_decay), epochs=args.epochs,
            batch_size=args.batch_size, noise=args.noise, seed=0, progress=False,
            callbacks=[cosine_lr(1e-3, 1e-5, args.epochs), record]).fit(X_train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
