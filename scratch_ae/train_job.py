"""One `scratch-ae train` run: configuration -> data, model, training, metrics.json, model.npz, figures.

Everything is validated and the data is loaded before anything is written to
the output directory, so bad input leaves nothing half-written there.
"""
import json
import math
import os
import platform
import time

import numpy as np

from . import __version__
from .metrics import reconstruction_metrics
from .layers import activation_name
from .models import Autoencoder
from .optimizers import make_optimizer
from .training import Trainer, TrainingInterrupted

MODELS = ("shallow", "deep", "linear", "sparse", "denoising", "conv", "conv-stride2", "vae")
CONV_MODELS = ("conv", "conv-stride2")
# The one set of defaults: the command line's options and `run` both take theirs from here.
DEFAULTS = dict(dataset="mnist", model="shallow", hidden=None, code=None, activation=None, output_activation=None,
                loss="mse", epochs=8, batch_size=100, optimizer="adam", lr=1e-3, lr_schedule="constant",
                weight_decay=0.0, l1=None, kl_rho=None, kl_beta=1.0, dropout=0.0, decoder=None, channels=None,
                noise=None, occlusion=None, val_fraction=0.1, patience=None, seed=0, backend="numpy", limit=None,
                data_dir=None, code_activation=None, latent=50, beta=1.0, kl_warmup=0, likelihood="bernoulli", binarize=None, encoder="dense",
                is_samples=100, engine="auto")
VAE_ONLY = ("latent", "beta", "kl_warmup", "likelihood", "binarize", "encoder", "is_samples")
CONV_PRESETS = {"conv": dict(channels=(16, 8), downsample="pool", decoder="deconv+unpool"),
                "conv-stride2": dict(channels=(128, 64, 32, 16), downsample="stride", decoder="deconv")}


def build_model(cfg, image_shape, notes=None):
    """The model `cfg` describes, for images of `image_shape` ((H, W) or (C, H, W))."""
    width = int(np.prod(image_shape))
    if cfg["model"] != "vae":
        for option in VAE_ONLY:
            if cfg.get(option, DEFAULTS[option]) != DEFAULTS[option]:
                raise ValueError(f"argument --{option.replace('_', '-')}: only --model vae has it")
    engine = cfg.get("engine", DEFAULTS["engine"])
    if cfg["model"] == "vae":
        from .models.vae import VariationalAutoencoder
        return VariationalAutoencoder(**vae_kwargs(cfg, image_shape, notes), engine=engine)
    if cfg["model"] in CONV_MODELS:
        from .models.conv import ConvAutoencoder
        return ConvAutoencoder(**conv_kwargs(cfg, image_shape, notes), engine=engine)
    return Autoencoder(**model_kwargs(cfg, width, notes), engine=engine)


def vae_kwargs(cfg, image_shape, notes=None):
    """VariationalAutoencoder arguments for --model vae (dense by default, --encoder conv)."""
    notes = [] if notes is None else notes
    for option in ("code", "kl_rho", "l1", "decoder", "noise", "occlusion"):
        if cfg.get(option) is not None:
            raise ValueError(f"argument --{option.replace('_', '-')}: --model vae does not take it"
                             + ("; give the latent size with --latent" if option == "code" else ""))
    if cfg.get("dropout"):
        raise ValueError("argument --dropout: --model vae does not take it")
    for option in ("activation", "output_activation"):
        if cfg.get(option) is not None and option == "output_activation":
            raise ValueError("argument --output-activation: a VAE's output follows its --likelihood "
                             "(sigmoid for bernoulli, identity for gaussian)")
    if cfg["loss"] != "mse":
        raise ValueError("argument --loss: a VAE's loss is its negative ELBO; choose the --likelihood instead")
    width = int(np.prod(image_shape))
    hidden = [int(h) for h in str(cfg["hidden"]).split(",")] if cfg["hidden"] is not None else [200, 200]
    shape = tuple(image_shape) if len(image_shape) == 3 else (1, *image_shape)
    kwargs = dict(encoder=cfg["encoder"], sizes=(width, *hidden), latent=cfg["latent"], input_shape=shape,
                  likelihood=cfg["likelihood"], beta=cfg["beta"], kl_warmup=cfg["kl_warmup"], binarize=cfg["binarize"],
                  weight_decay=cfg["weight_decay"], optimizer=cfg["optimizer"], lr=cfg["lr"], epochs=cfg["epochs"],
                  batch_size=cfg["batch_size"], patience=cfg["patience"], backend=cfg["backend"], seed=cfg["seed"])
    if cfg["activation"] is not None:
        kwargs["activation"] = cfg["activation"]
    if cfg["channels"]:
        kwargs["channels"] = tuple(int(c) for c in str(cfg["channels"]).split(","))
    return kwargs


def conv_kwargs(cfg, image_shape, notes=None):
    """ConvAutoencoder arguments for --model conv / conv-stride2; dense-only options are refused."""
    notes = [] if notes is None else notes
    kind = cfg["model"]
    for option in ("hidden", "kl_rho", "l1"):
        if cfg.get(option) is not None:
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"argument {flag}: --model {kind} has no dense hidden layers"
                             + ("; set its channels with --channels (and a dense code's width with --code)"
                                if option == "hidden" else ""))
    if cfg.get("code_activation") is not None:
        raise ValueError(f"argument --code-activation: --model {kind}'s code is its last stage's maps after "
                         f"--activation, or with --code a linear dense code")
    preset = CONV_PRESETS[kind]
    if kind == "conv-stride2" and cfg["decoder"] not in (None, "deconv"):
        raise ValueError(f"argument --decoder: --model conv-stride2 has no max-pool positions to unpool; "
                         f"its decoder is deconv, got {cfg['decoder']}")
    channels = tuple(int(c) for c in str(cfg["channels"]).split(",")) if cfg["channels"] else preset["channels"]
    output = cfg["output_activation"] or "sigmoid"
    if cfg["loss"] == "bce" and output != "sigmoid":
        raise ValueError(f"argument --output-activation: --loss bce needs --output-activation sigmoid "
                         f"(BCE compares probabilities), got {output}")
    shape = tuple(image_shape) if len(image_shape) == 3 else (1, *image_shape)
    return dict(input_shape=shape, channels=channels, downsample=preset["downsample"],
                decoder=cfg["decoder"] or preset["decoder"], dense_code=cfg["code"], activation=cfg["activation"] or "relu",
                output_activation=output, loss=cfg["loss"], weight_decay=cfg["weight_decay"], dropout=cfg["dropout"],
                optimizer=cfg["optimizer"], lr=cfg["lr"], epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                patience=cfg["patience"], backend=cfg["backend"], seed=cfg["seed"])
EXIT_DIVERGED = 3  # `scratch-ae train` exits with this when the run diverged (see Trainer)


def model_kwargs(cfg, input_size, notes=None):
    """Turn the command-line configuration into Autoencoder arguments (the --model presets).

    Choices the presets make that the user did not ask for in so many words (a sigmoid
    output for BCE, a sigmoid code for KL sparsity) are appended to `notes` as one line
    each; contradictions are refused with a ValueError naming the flag.
    """
    notes = [] if notes is None else notes
    kind = cfg["model"]
    for option in ("decoder", "channels"):
        if cfg.get(option) is not None:
            raise ValueError(f"argument --{option}: only the convolutional models (--model conv, conv-stride2) "
                             f"have a {option}")
    hidden = [int(h) for h in str(cfg["hidden"]).split(",")] if cfg["hidden"] is not None else None
    if kind == "shallow" and hidden is not None and len(hidden) > 1:
        raise ValueError(f"argument --hidden: --model shallow has one hidden layer, got {len(hidden)} widths "
                         f"({cfg['hidden']}); give one width, or use --model deep for several")
    if kind == "shallow" and cfg["code"]:
        raise ValueError("argument --code: in --model shallow the hidden layer is the code; give its width with "
                         "--hidden, or use --model deep for hidden layers and a code")
    if kind == "linear" and hidden is not None and len(hidden) > 1:
        raise ValueError("argument --hidden: --model linear has one layer, the code; give its width with --code")
    if kind == "deep":
        sizes = [input_size] + (hidden or [128]) + [cfg["code"] or 32]
    elif kind == "linear":
        sizes = [input_size, cfg["code"] or (hidden[0] if hidden else 30)]
    else:
        sizes = [input_size] + (hidden or [256])
        if cfg["code"]:
            sizes.append(cfg["code"])
        if len(sizes) > 2:
            notes.append(f"--model {kind} with --hidden {cfg['hidden']}" + (f" --code {cfg['code']}" if cfg["code"] else "")
                         + f": a deep network, {'-'.join(map(str, sizes + sizes[-2::-1]))}")
    linear = kind == "linear"
    activation = cfg["activation"] or ("identity" if linear else "relu")
    output = cfg["output_activation"] or ("sigmoid" if cfg["loss"] == "bce" else "identity" if linear else "relu")
    if cfg["loss"] == "bce" and output not in ("sigmoid",):
        raise ValueError(f"argument --output-activation: --loss bce needs --output-activation sigmoid "
                         f"(BCE compares probabilities), got {output}")
    if cfg["loss"] == "bce" and cfg["output_activation"] is None:
        notes.append("--loss bce: the output activation is sigmoid (BCE compares probabilities); "
                     "say --output-activation sigmoid to silence this note")
    code_activation = cfg.get("code_activation")  # None: the model's default, the hidden activation
    if cfg["kl_rho"] is not None and activation != "sigmoid" and code_activation is None:
        code_activation = "sigmoid"
        notes.append(f"--kl-rho: the code layer uses sigmoid (KL sparsity needs mean activations in (0, 1)); "
                     f"the other layers keep {activation}; say --activation sigmoid to silence this note")
    l1 = cfg["l1"] if cfg["l1"] is not None else (1e-4 if kind == "sparse" else 0.0)
    return dict(sizes=sizes, activation=activation, output_activation=output, loss=cfg["loss"], l1=l1,
                kl_rho=cfg["kl_rho"], kl_beta=cfg["kl_beta"] if cfg["kl_rho"] is not None else 0.0,
                weight_decay=cfg["weight_decay"], optimizer=cfg["optimizer"], lr=cfg["lr"], epochs=cfg["epochs"],
                batch_size=cfg["batch_size"], patience=cfg["patience"], backend=cfg["backend"], seed=cfg["seed"],
                code_activation=code_activation, dropout=cfg["dropout"])


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
    """Train as `cfg` says and write metrics.json, model.npz and figures/ into out_dir.

    The output folder is checked first (outputs.check_writable), then the data is loaded and
    every option validated, all before the first step.  A diverged run (see `Trainer`) still
    writes metrics.json with `stop_reason` and `diverged: true`, and model.npz and figures only
    when some epoch ended finite; the caller exits with EXIT_DIVERGED.
    """
    from .data import parse_corruption
    from .outputs import check_writable
    cfg = {**DEFAULTS, **cfg}
    check_writable(out_dir, "--resume" if resume else "--out")
    if cfg["patience"] is not None and not cfg["val_fraction"]:
        raise ValueError("argument --patience: early stopping needs validation data; give --val-fraction > 0")
    from .data.datasets import IMAGE_SHAPES
    from .data.sources import check_name
    from .schedules import make_schedule
    notes = []
    check_name(cfg["dataset"])
    image_shape = IMAGE_SHAPES[cfg["dataset"]]  # the shape load_dataset gives this dataset's images
    model = build_model(cfg, image_shape, notes)  # refuses contradicting options before the data is loaded
    make_schedule(cfg["lr_schedule"])
    noise = noise_spec(cfg)
    corrupt = parse_corruption(noise, image_shape) if noise else None  # validates the spec before any work
    X, X_val, test, _ = load_split(cfg)
    optimizer = make_optimizer(cfg["optimizer"], cfg["lr"], cfg["weight_decay"], engine=cfg["engine"])
    resume_path = os.path.join(out_dir, "resume.npz")
    trainer = Trainer(model, optimizer, epochs=cfg["epochs"], batch_size=cfg["batch_size"], noise=corrupt,
                      patience=cfg["patience"], seed=cfg["seed"], progress=progress, resume_path=resume_path,
                      lr_schedule=None if cfg["lr_schedule"] == "constant" else cfg["lr_schedule"],
                      image_shape=image_shape)
    trainer.resume_extra = {"cli_config": cfg}
    if resume:
        trainer.load_resume(resume_path)
        log(f"resuming from {resume_path}")
    else:
        for note in notes:
            log(f"note: {note}")
    t0 = time.perf_counter()
    history = trainer.fit(X, X_val if len(X_val) else None)  # raises TrainingInterrupted on Ctrl-C
    wall = time.perf_counter() - t0
    has_weights = not history["diverged"] or history["best_epoch"] is not None
    code_activation = getattr(model, "code_activation", None) or model.activation
    if getattr(model, "dense_code", None):
        code_activation = "identity"  # a conv model's dense code is linear
    if model.family == "vae":
        output_activation, code_activation = ("sigmoid" if model.likelihood == "bernoulli" else "identity"), "identity"
        shape = {"encoder": model.encoder, "sizes": list(model.sizes), "latent": int(model.latent)}
    else:
        output_activation = model.output_activation
        shape = {"sizes": list(model.sizes)} if model.family == "dense" else {
            "channels": list(model.channels), "decoder": model.decoder, "downsample": model.downsample,
            "dense_code": model.dense_code, "input_shape": list(model.image_shape)}
    metrics = {
        "history": {k: history[k] for k in ("train_loss", "val_loss", "epoch_seconds")},
        "stop_reason": history["stop_reason"], "diverged": history["diverged"], "best_epoch": history["best_epoch"],
        "epochs_run": history["epochs_run"], "initial_loss": history["initial_loss"], "train_seconds": wall,
        "train": None, "test": None,
        "backend": model.backend_.name, "device": model.backend_.device_name(), "versions": versions(model.backend_),
        "engine": {"requested": cfg["engine"], "resolved": model.engine_},
        "config": {**cfg, "noise": noise, **shape, "code_size": int(model.code_size), "n_train": int(X.shape[0]),
                   "n_val": int(X_val.shape[0]), "activation": activation_name(model.activation),
                   "code_activation": activation_name(code_activation),
                   "output_activation": activation_name(output_activation)},
    }
    if has_weights:
        model.save(os.path.join(out_dir, "model.npz"))  # creates out_dir: only now is there something to keep
        metrics["train"] = reconstruction_metrics(model, X)
        metrics["test"] = reconstruction_metrics(model, test.images)
        if corrupt is not None:  # the denoising task itself: corrupted input, clean target, seeded noise
            metrics["test_corrupted"] = {"corruption": noise, **reconstruction_metrics(
                model, test.images, corrupt=corrupt, rng=np.random.default_rng([cfg["seed"], 1]))}
        if X_val.shape[0]:
            metrics["validation"] = reconstruction_metrics(model, X_val)
        if model.family == "vae":
            metrics.update(vae_metrics(model, test.images, cfg))
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "metrics.json"), metrics)
    if has_weights:
        write_figures(model, history, test, image_shape, os.path.join(out_dir, "figures"), metrics, corrupt,
                      cfg["seed"])
    return metrics


def vae_metrics(model, X_test, cfg):
    """The paper-style figures, per test image in nats: the negative ELBO (one sampled z per image),
    the importance-sampled NLL with cfg["is_samples"] samples, the KL and reconstruction terms, and
    the active units.  With dynamic binarisation the test set is binarised once, with a fixed seed."""
    from .models.vae import binarize
    X = binarize(X_test, np.random.default_rng([cfg["seed"], 2])) if model.binarize_ == "dynamic" else X_test
    rng = lambda k: np.random.default_rng([cfg["seed"], 3, k])  # noqa: E731
    terms = model.kl_and_reconstruction(X, rng(0))
    out = {"neg_elbo": model.negative_elbo(X, rng(0)), "kl": terms["kl"], "reconstruction": terms["reconstruction"],
           "active_units": int(model.active_units(X)), "latent": int(model.latent), "is_samples": int(cfg["is_samples"]),
           "test_binarized": model.binarize_ == "dynamic"}
    out["nll_is"] = model.nll_importance_sampled(X, k=cfg["is_samples"], rng=rng(1)) if cfg["is_samples"] else None
    return out


LOSS_UNITS = {"mse": "MSE per pixel", "bce": "BCE per pixel"}


def write_figures(model, history, test, image_shape, fig_dir, metrics=None, corrupt=None, seed=0):
    """Loss curves, reconstructions (with each image's squared error) and first-layer filters."""
    from .plots import per_image_squared_error, plot_filters, plot_image_rows, plot_loss_curves
    if model.family == "vae":
        return write_vae_figures(model, history, test, image_shape, fig_dir, metrics, seed)
    unit = LOSS_UNITS[model.loss]
    penalised = bool(model.penalties_) or model.weight_penalty_ is not None
    test_value = None
    if metrics is not None and metrics.get("test"):
        test_value = metrics["test"]["mse_per_pixel"] if model.loss == "mse" else None
    plot_loss_curves(history, os.path.join(fig_dir, "loss_curves.png"),
                     title=f"loss curves ({unit}" + ("; training adds the penalties" if penalised else "") + ")",
                     ylabel=unit, test_value=test_value, test_label="test MSE per pixel")
    originals = test.images[:10]
    if corrupt is None:
        recon = model.inverse_transform(model.transform(originals))
        plot_image_rows([originals, recon], ["test images", "reconstructions"],
                        image_shape, os.path.join(fig_dir, "reconstructions.png"),
                        errors=[None, per_image_squared_error(recon, originals)])
    else:
        noisy = corrupt(originals, np.random.default_rng([seed, 1]))
        recon = model.inverse_transform(model.transform(noisy))
        plot_image_rows([noisy, recon, originals],
                        ["corrupted input", "reconstruction from the corrupted input", "clean target"], image_shape,
                        os.path.join(fig_dir, "reconstructions.png"),
                        errors=[per_image_squared_error(noisy, originals), per_image_squared_error(recon, originals),
                                None], error_label="SE to the clean target")
    if model.family == "conv":
        write_conv_filters(model, fig_dir)
        return
    # Most active units first: a ReLU unit that never fires keeps its random start (the largest norms),
    # so ordering by weight norm would open the grid with noise.
    W = model.state_arrays()["layers.0.W"]
    first = model.layers_[:2]  # the first Dense layer and its activation
    h = first[1].forward(first[0].forward(model.backend_.asarray(test.images[:1000], dtype=model.dtype)))
    order = np.argsort(-model.backend_.to_numpy(h.mean(axis=0)), kind="stable")
    plot_filters(W[:, order], image_shape, os.path.join(fig_dir, "filters.png"), order=None, total=W.shape[1],
                 title="first-layer filters (columns of W1), one colour scale",
                 order_note="most active on 1000 test images first")


def write_vae_figures(model, history, test, image_shape, fig_dir, metrics, seed):
    """A VAE's learning curve (negative ELBO, nats per image), reconstructions of test means, prior samples."""
    from .plots import per_image_squared_error, plot_image_rows, plot_loss_curves
    test_value = metrics.get("neg_elbo") if metrics else None
    plot_loss_curves(history, os.path.join(fig_dir, "loss_curves.png"), title="VAE: negative ELBO",
                     ylabel="negative ELBO (nats per image)", test_value=test_value, test_label="test negative ELBO")
    originals = test.images[:10]
    recon = model.inverse_transform(model.transform(originals))
    plot_image_rows([originals, recon], ["test images", "decoded from the posterior mean"], image_shape,
                    os.path.join(fig_dir, "reconstructions.png"), errors=[None, per_image_squared_error(recon, originals)])
    samples = model.sample(20, np.random.default_rng([seed, 4]))
    plot_image_rows([samples[:10], samples[10:]], ["decoded from z ~ N(0, I)", ""], image_shape,
                    os.path.join(fig_dir, "samples.png"))


def write_conv_filters(model, fig_dir):
    """The first encoder convolution's kernels and the last decoder convolution's, one grid each."""
    from .layers import Conv2d, ConvTranspose2d
    from .plots import plot_filters
    first = next(layer for layer in model.encoder_.layers if isinstance(layer, Conv2d))
    last = [layer for layer in model.decoder_.layers if isinstance(layer, (Conv2d, ConvTranspose2d))][-1]
    kind = "transposed convolution" if isinstance(last, ConvTranspose2d) else "convolution"
    for name, layer, which in (("filters.png", first, "first encoder convolution"),
                               ("decoder_filters.png", last, f"last decoder {kind}")):
        W = model.backend_.to_numpy(layer.params["W"])
        # Encoder: Conv2d W is (out, in, kH, kW), one filter per output channel, drawn over its input
        # channels.  Decoder: ConvTranspose2d W is (in, out, kH, kW), one filter per input channel drawn
        # over the output (the picture it paints); a decoder Conv2d is read the same way, axes swapped.
        if layer is last and isinstance(last, Conv2d):
            W = W.transpose(1, 0, 2, 3)
        n, channels, kH, kW = W.shape
        shape = (kH, kW) if channels != 3 else (3, kH, kW)
        columns = W[:, :1] if channels not in (1, 3) else W
        plot_filters(columns.reshape(n, -1).T, shape, os.path.join(fig_dir, name), n=min(n, 64), order="norm",
                     title=f"{which}: {kH}x{kW} kernels" + ("" if channels in (1, 3) else f" (channel 0 of {channels})"))


def _strict_json(value):
    """Replace non-finite floats by None (null): NaN and Infinity are not JSON."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path, payload):
    """Write strict JSON atomically (non-finite numbers become null)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_strict_json(payload), f, indent=2, allow_nan=False,
                  default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
    os.replace(tmp, path)


__all__ = ["run", "MODELS", "DEFAULTS", "EXIT_DIVERGED", "TrainingInterrupted", "model_kwargs", "write_json"]
