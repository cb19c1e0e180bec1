"""One `scratch-ae train` run: configuration -> data, model, training, metrics.json, model.npz, figures.

Everything is validated and the data is loaded before anything is written to
the output directory, so bad input leaves nothing half-written there.
"""
import json
import os
import platform
import time

import numpy as np

from . import __version__
from .metrics import reconstruction_metrics
from .model import Autoencoder
from .optimizers import make_optimizer
from .training import Trainer, TrainingInterrupted

MODELS = ("shallow", "deep", "linear", "sparse", "denoising")
DEFAULTS = dict(dataset="mnist", model="shallow", hidden=None, code=None, activation=None, output_activation=None,
                loss="mse", epochs=8, batch_size=100, optimizer="adam", lr=1e-3, weight_decay=0.0, l1=None,
                kl_rho=None, kl_beta=0.0, noise=None, occlusion=None, val_fraction=0.1, patience=None, seed=0,
                backend="numpy", limit=None, data_dir=None)


def model_kwargs(cfg, input_size):
    """Turn the command-line configuration into Autoencoder arguments (the --model presets)."""
    kind = cfg["model"]
    hidden = [int(h) for h in str(cfg["hidden"]).split(",")] if cfg["hidden"] is not None else None
    if kind == "deep":
        sizes = [input_size] + (hidden or [128]) + [cfg["code"] or 32]
    elif kind == "linear":
        sizes = [input_size, cfg["code"] or (hidden[0] if hidden else 30)]
    else:
        sizes = [input_size] + (hidden or [256])
        if cfg["code"]:
            sizes.append(cfg["code"])
    linear = kind == "linear"
    activation = cfg["activation"] or ("identity" if linear else "relu")
    output = cfg["output_activation"] or ("sigmoid" if cfg["loss"] == "bce" else "identity" if linear else "relu")
    l1 = cfg["l1"] if cfg["l1"] is not None else (1e-4 if kind == "sparse" else 0.0)
    return dict(sizes=sizes, activation=activation, output_activation=output, loss=cfg["loss"], l1=l1,
                kl_rho=cfg["kl_rho"], kl_beta=cfg["kl_beta"] if cfg["kl_rho"] is not None else 0.0,
                weight_decay=cfg["weight_decay"], optimizer=cfg["optimizer"], lr=cfg["lr"], epochs=cfg["epochs"],
                batch_size=cfg["batch_size"], patience=cfg["patience"], backend=cfg["backend"], seed=cfg["seed"],
                code_activation="sigmoid" if cfg["kl_rho"] is not None else None)


def noise_spec(cfg):
    if cfg["noise"] and cfg["occlusion"] is not None:
        raise ValueError("argument --occlusion: give either --noise or --occlusion, not both")
    if cfg["occlusion"] is not None:
        return f"occlusion:{cfg['occlusion']}"
    if cfg["noise"]:
        return cfg["noise"]
    return "gaussian:0.45" if cfg["model"] == "denoising" else None


def load_split(cfg):
    """(train, val, test, image_shape) as host arrays, the split seeded by cfg["seed"]."""
    from .data import load_dataset, train_val_split
    train = load_dataset(cfg["dataset"], "train", data_dir=cfg["data_dir"], limit=cfg["limit"])
    test = load_dataset(cfg["dataset"], "test", data_dir=cfg["data_dir"])
    X, _, X_val, _ = train_val_split(train.images, train.labels, cfg["val_fraction"], cfg["seed"])
    return X, X_val, test, train.image_shape


def versions(backend):
    import matplotlib
    import sklearn
    out = {"scratch_ae": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "scikit_learn": sklearn.__version__, "matplotlib": matplotlib.__version__}
    if backend.name == "cupy":
        out["cupy"] = backend.xp.__version__
    return out


def run(cfg, out_dir, progress=True, resume=False, log=print):
    """Train as `cfg` says and write metrics.json, model.npz and figures/ into out_dir."""
    from .data import parse_corruption
    cfg = {**DEFAULTS, **cfg}
    if cfg["patience"] is not None and not cfg["val_fraction"]:
        raise ValueError("argument --patience: early stopping needs validation data; give --val-fraction > 0")
    X, X_val, test, image_shape = load_split(cfg)
    noise = noise_spec(cfg)
    corrupt = parse_corruption(noise, image_shape) if noise else None  # validates the spec before any work
    model = Autoencoder(**model_kwargs(cfg, X.shape[1]))
    optimizer = make_optimizer(cfg["optimizer"], cfg["lr"], cfg["weight_decay"])
    resume_path = os.path.join(out_dir, "resume.npz")
    trainer = Trainer(model, optimizer, epochs=cfg["epochs"], batch_size=cfg["batch_size"], noise=corrupt,
                      patience=cfg["patience"], seed=cfg["seed"], progress=progress, resume_path=resume_path)
    trainer.resume_extra = {"cli_config": cfg}
    if resume:
        trainer.load_resume(resume_path)
        log(f"resuming from {resume_path}")
    t0 = time.perf_counter()
    history = trainer.fit(X, X_val if len(X_val) else None)  # raises TrainingInterrupted on Ctrl-C
    wall = time.perf_counter() - t0
    model.save(os.path.join(out_dir, "model.npz"))  # creates out_dir: only now is there something to keep
    metrics = {
        "history": {k: history[k] for k in ("train_loss", "val_loss", "epoch_seconds")},
        "stop_reason": history["stop_reason"], "best_epoch": history["best_epoch"], "train_seconds": wall,
        "train": reconstruction_metrics(model, X), "test": reconstruction_metrics(model, test.images),
        "backend": model.backend_.name, "device": model.backend_.device_name(), "versions": versions(model.backend_),
        "config": {**cfg, "noise": noise, "sizes": list(model.sizes), "n_train": int(X.shape[0]),
                   "n_val": int(X_val.shape[0])},
    }
    if X_val.shape[0]:
        metrics["validation"] = reconstruction_metrics(model, X_val)
    write_json(os.path.join(out_dir, "metrics.json"), metrics)
    write_figures(model, history, test, image_shape, os.path.join(out_dir, "figures"))
    return metrics


def write_figures(model, history, test, image_shape, fig_dir):
    from .plots import plot_filters, plot_image_rows, plot_loss_curves
    plot_loss_curves(history, os.path.join(fig_dir, "loss_curves.png"))
    originals = test.images[:10]
    plot_image_rows([originals, model.inverse_transform(model.transform(originals))], ["test images", "reconstructions"],
                    image_shape, os.path.join(fig_dir, "reconstructions.png"))
    plot_filters(model.state_arrays()["layers.0.W"], image_shape, os.path.join(fig_dir, "filters.png"))


def write_json(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
    os.replace(tmp, path)


__all__ = ["run", "MODELS", "DEFAULTS", "TrainingInterrupted", "model_kwargs"]
