"""The `scratch-ae` command line: train, evaluate, reconstruct, info, lab.

Bad input prints one line on stderr naming the argument and what was expected,
and exits with status 2; nothing is written to --out before the input is valid.
"""
import argparse
import json
import os
import sys

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class UsageError(Exception):
    """Bad input from the command line: one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _number(cast, accept, expected):
    """An argparse type: `cast` the text, then require `accept(value)`, else say what was expected."""
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):  # NaN fails every comparison, so it is rejected too
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    parse.__name__ = expected
    return parse


INF = float("inf")
positive_int = _number(int, lambda v: v > 0, "a positive integer")
positive_float = _number(float, lambda v: 0 < v < INF, "a positive finite number")
nonnegative_float = _number(float, lambda v: 0 <= v < INF, "a finite number >= 0")
fraction = _number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
open_fraction = _number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


def hidden_sizes(text):
    parts = text.split(",")
    for part in parts:
        positive_int(part)
    return text


def build_parser():
    from .backend import BACKENDS
    from .data import DATASETS
    from .labs import LABS
    from .layers import ACTIVATIONS
    from .optimizers import OPTIMIZERS
    from .train_job import MODELS

    parser = OneLineParser(prog="scratch-ae", description="Autoencoders from scratch in NumPy/CuPy.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    activations = list(ACTIVATIONS) + ["linear"]

    def common(p, out_default):
        p.add_argument("--dataset", choices=DATASETS, default="mnist")
        p.add_argument("--backend", choices=BACKENDS, default="numpy")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", default=out_default, help=f"output directory (default {out_default})")
        p.add_argument("--data-dir", default=None, help="where to look for (and download) datasets")

    t = sub.add_parser("train", help="train an autoencoder; writes metrics.json, model.npz and figures/")
    common(t, "runs/train")
    t.add_argument("--model", choices=MODELS, default="shallow")
    t.add_argument("--hidden", type=hidden_sizes, default=None,
                   help="hidden width(s), comma-separated for deep nets (default 256; deep 128)")
    t.add_argument("--code", type=positive_int, default=None, help="code width (deep default 32, linear 30)")
    t.add_argument("--activation", choices=activations, default=None)
    t.add_argument("--output-activation", choices=activations, default=None)
    t.add_argument("--loss", choices=("mse", "bce"), default="mse")
    t.add_argument("--epochs", type=positive_int, default=8)
    t.add_argument("--batch-size", type=positive_int, default=100)
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    t.add_argument("--lr", type=positive_float, default=1e-3)
    t.add_argument("--weight-decay", type=nonnegative_float, default=0.0)
    t.add_argument("--l1", type=nonnegative_float, default=None, help="L1 activity penalty (sparse default 1e-4)")
    t.add_argument("--kl-rho", type=open_fraction, default=None, help="KL sparsity target (sigmoid code)")
    t.add_argument("--kl-beta", type=nonnegative_float, default=1.0)
    t.add_argument("--noise", default=None, help="train on corrupted inputs, e.g. gaussian:0.45, masking:0.3")
    t.add_argument("--occlusion", type=fraction, default=None, help="train with square occlusions covering fraction p")
    t.add_argument("--val-fraction", type=fraction, default=0.1)
    t.add_argument("--patience", type=positive_int, default=None, help="early stopping patience (epochs)")
    t.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--resume", metavar="DIR", default=None, help="continue an interrupted run in DIR")

    e = sub.add_parser("evaluate", help="test metrics of a saved model, optionally under noise or occlusion")
    e.add_argument("model_path", metavar="MODEL.npz")
    common(e, None)
    e.add_argument("--noise", default=None)
    e.add_argument("--occlusion", type=fraction, default=None)

    r = sub.add_parser("reconstruct", help="write a grid of test images, a random-noise image and their reconstructions")
    r.add_argument("model_path", metavar="MODEL.npz")
    common(r, None)
    r.add_argument("--n", type=positive_int, default=10)

    sub.add_parser("info", help="versions, available backends, where data is found")

    lab = sub.add_parser("lab", help="run a classic autoencoder lab")
    lab.add_argument("name", choices=list(LABS))
    common(lab, None)
    lab.add_argument("--quick", action="store_true", help="small subset and few epochs")
    lab.add_argument("--epochs", type=positive_int, default=None, help="override the lab's number of epochs")
    lab.add_argument("--no-progress", action="store_true")
    return parser


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"scratch-ae: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("scratch-ae: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _user_errors():
    """Exceptions that mean bad input (reported in one line), not a bug."""
    from .backend import BackendError
    from .checkpoint import CheckpointError
    from .data import DataError
    return (BackendError, CheckpointError, DataError, ValueError, FileNotFoundError)


def _fail(exc):
    print(f"scratch-ae: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
    return EXIT_USAGE


def cmd_train(args):
    from .checkpoint import load_arrays
    from .train_job import TrainingInterrupted, run
    if args.resume:
        out = args.resume
        path = os.path.join(out, "resume.npz")
        try:
            cfg = load_arrays(path)[1]["cli_config"]
        except _user_errors() as exc:
            return _fail(f"argument --resume: {exc}")
        resume = True
    else:
        out, resume = args.out, False
        cfg = {k: v for k, v in vars(args).items() if k not in ("command", "out", "no_progress", "resume")}
    try:
        metrics = run(cfg, out, progress=not args.no_progress, resume=resume)
    except TrainingInterrupted as exc:
        print(f"scratch-ae: {exc}; continue with: scratch-ae train --resume {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _user_errors() as exc:
        return _fail(exc)
    if metrics["stop_reason"]:
        print(f"stopped: {metrics['stop_reason']}")
    print(f"test: {metrics['test']['sse_per_image']:.4f} squared error per image "
          f"({metrics['test']['mse_per_pixel']:.6f} per pixel); wrote {out}/metrics.json, model.npz, figures/")
    return 0


def _load_model_and_test(args):
    from .data import load_dataset
    from .model import Autoencoder
    model = Autoencoder.load(args.model_path, backend=args.backend)
    test = load_dataset(args.dataset, "test", data_dir=args.data_dir)
    if test.images.shape[1] != model.input_size:
        raise ValueError(f"argument --dataset: {args.dataset} images have {test.images.shape[1]} pixels, "
                         f"the model expects {model.input_size}")
    return model, test


def cmd_evaluate(args):
    import numpy as np

    from .data import parse_corruption
    from .metrics import reconstruction_metrics
    from .train_job import write_json
    try:
        if args.noise and args.occlusion is not None:
            raise ValueError("argument --occlusion: give either --noise or --occlusion, not both")
        model, test = _load_model_and_test(args)
        spec = f"occlusion:{args.occlusion}" if args.occlusion is not None else args.noise
        corrupt = parse_corruption(spec, test.image_shape) if spec else None
        metrics = reconstruction_metrics(model, test.images, corrupt=corrupt, rng=np.random.default_rng(args.seed))
    except _user_errors() as exc:
        return _fail(exc)
    result = {"model": args.model_path, "dataset": args.dataset, "corruption": spec, "test": metrics}
    out = args.out or os.path.dirname(os.path.abspath(args.model_path))
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "evaluation.json"), result)
    print(json.dumps(result, indent=2))
    return 0


def cmd_reconstruct(args):
    import numpy as np

    from .plots import plot_image_rows
    try:
        model, test = _load_model_and_test(args)
    except _user_errors() as exc:
        return _fail(exc)
    originals = test.images[:args.n]
    noise = np.random.default_rng(args.seed).uniform(0, 1, (1, model.input_size)).astype(np.float32)
    inputs = np.concatenate([originals, noise])
    out = args.out or os.path.dirname(os.path.abspath(args.model_path))
    path = plot_image_rows([inputs, model.inverse_transform(model.transform(inputs))],
                           ["test images + a random-noise image", "reconstructions"], test.image_shape,
                           os.path.join(out, "reconstruct.png"))
    print(f"wrote {path}")
    return 0


def cmd_info(args):
    from . import __version__
    from .backend import cupy_unavailable_reason, get_backend
    from .data import DATASETS, dataset_location
    from .train_job import versions
    print(f"scratch-ae {__version__}")
    for name, version in versions(get_backend("numpy")).items():
        print(f"  {name}: {version}")
    reason = cupy_unavailable_reason()
    print("backends:\n  numpy: available")
    print(f"  cupy: {'available' if reason is None else 'unavailable: ' + reason}")
    print("data:")
    for name in DATASETS:
        print(f"  {name}: {dataset_location(name)}")
    return 0


def cmd_lab(args):
    from .labs import run_lab
    out = args.out or os.path.join("runs", "lab-" + args.name + ("-quick" if args.quick else ""))
    try:
        results = run_lab(args.name, out, quick=args.quick, backend=args.backend, seed=args.seed,
                          progress=not args.no_progress, dataset=args.dataset,
                          **({"epochs": args.epochs} if args.epochs else {}))
    except _user_errors() as exc:
        return _fail(exc)
    print(f"lab {args.name}: wrote {out}/results.json, results.md and figures/ ({len(results.get('rows', []))} rows)")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "reconstruct": cmd_reconstruct, "info": cmd_info,
            "lab": cmd_lab}

if __name__ == "__main__":
    sys.exit(main())
