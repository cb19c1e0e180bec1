"""The `scratch-ae` command line: train, evaluate, reconstruct, info, lab.

Exit status: 0 done; 2 bad input (one line on stderr naming the argument and
what was expected; nothing trained and nothing written: the output folder is
checked, the data loaded and every option validated before the first step);
3 the training diverged (see `Trainer`; metrics.json says so, and the best
finite epoch's weights are saved when there is one); 130 interrupted by Ctrl-C
(a resumable checkpoint is written; continue with `--resume DIR`).
"""
import argparse
import json
import os
import sys

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130  # and train_job.EXIT_DIVERGED = 3


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
nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: 0 < v < INF, "a positive finite number")
nonnegative_float = _number(float, lambda v: 0 <= v < INF, "a finite number >= 0")
fraction = _number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
open_fraction = _number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


def hidden_sizes(text):
    parts = text.split(",")
    for part in parts:
        positive_int(part)
    return text


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default; options without one (flags, None) say nothing extra."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or not action.option_strings:
            return action.help
        return super()._get_help_string(action)


# What `--resume DIR` lets the command line change: the rest comes from the saved run.
RESUME_MAY_CHANGE = ("epochs", "no_progress", "backend", "data_dir")


def build_parser():
    from .backend import BACKENDS
    from .data import DATASETS
    from .labs import LABS
    from .layers import ACTIVATIONS
    from .optimizers import OPTIMIZERS
    from .train_job import DEFAULTS as D
    from .models.conv import DECODERS
    from .schedules import parse_lr_schedule
    from .train_job import MODELS

    parser = OneLineParser(prog="scratch-ae", description="Autoencoders from scratch in NumPy/CuPy.",
                           formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    activations = list(ACTIVATIONS) + ["linear"]

    def command(name, help):
        return sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)

    def common(p, out_help, dataset_default=D["dataset"], dataset_help="which images"):
        p.add_argument("--dataset", choices=DATASETS, default=dataset_default, help=dataset_help)
        p.add_argument("--backend", choices=BACKENDS, default=D["backend"], help="array backend: CPU or GPU")
        p.add_argument("--seed", type=int, default=D["seed"], help="seed for weights, batch order and noise")
        p.add_argument("--out", default=None, help=out_help)
        p.add_argument("--data-dir", default=None, help="where to look for (and download) datasets")

    t = command("train", "train an autoencoder; writes metrics.json, model.npz and figures/")
    common(t, "output folder (default: a fresh runs/train, runs/train-2, ...)")
    t.add_argument("--overwrite", action="store_true", help="allow --out to replace a finished run")
    t.add_argument("--model", choices=MODELS, default=D["model"], help="preset network")
    t.add_argument("--hidden", type=hidden_sizes, default=None,
                   help="hidden width(s), comma-separated for --model deep (default 256; deep 128)")
    t.add_argument("--code", type=positive_int, default=None, help="code width (deep default 32, linear 30; conv: a linear dense code "
                                                                  "after the conv maps, default none)")
    t.add_argument("--activation", choices=activations, default=None,
                   help="hidden activation (default relu; linear: identity)")
    t.add_argument("--output-activation", choices=activations, default=None,
                   help="output activation (default relu; sigmoid with --loss bce; linear: identity)")
    t.add_argument("--loss", choices=("mse", "bce"), default=D["loss"], help="reconstruction loss")
    t.add_argument("--epochs", type=positive_int, default=D["epochs"], help="passes over the training set")
    t.add_argument("--batch-size", type=positive_int, default=D["batch_size"], help="images per step")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=D["optimizer"], help="update rule")
    t.add_argument("--lr", type=positive_float, default=D["lr"], help="learning rate (a schedule's peak)")
    t.add_argument("--lr-schedule", type=parse_lr_schedule, default=D["lr_schedule"], metavar="SPEC",
                   help="learning rate against the step: constant, step:STEP_SIZE[:GAMMA] (epochs), "
                        "cosine[:MIN_FRACTION], warmup-cosine[:WARMUP_FRACTION[:MIN_FRACTION]], "
                        "one-cycle[:PCT_START[:DIV_FACTOR[:FINAL_DIV_FACTOR]]]")
    t.add_argument("--weight-decay", type=nonnegative_float, default=D["weight_decay"],
                   help="L2 weight decay (decoupled with --optimizer adamw)")
    t.add_argument("--l1", type=nonnegative_float, default=None, help="L1 activity penalty on the code (sparse default 1e-4)")
    t.add_argument("--kl-rho", type=open_fraction, default=None, help="KL sparsity target activation (sigmoid code)")
    t.add_argument("--kl-beta", type=nonnegative_float, default=D["kl_beta"], help="KL sparsity weight (with --kl-rho)")
    t.add_argument("--dropout", type=fraction, default=D["dropout"],
                   help="drop probability of inverted dropout after each hidden activation")
    t.add_argument("--decoder", choices=DECODERS, default=None,
                   help="--model conv's decoder (default deconv+unpool; conv-stride2: deconv)")
    t.add_argument("--channels", type=hidden_sizes, default=None,
                   help="conv stages' channels, comma-separated (conv 16,8; conv-stride2 128,64,32,16)")
    v = t.add_argument_group("variational autoencoder (--model vae)")
    v.add_argument("--encoder", choices=("dense", "conv"), default=D["encoder"], help="the VAE's encoder and decoder")
    v.add_argument("--latent", type=positive_int, default=D["latent"], help="latent units (mu and log-variance each)")
    v.add_argument("--beta", type=nonnegative_float, default=D["beta"], help="weight of the KL term")
    v.add_argument("--kl-warmup", type=nonnegative_int, default=D["kl_warmup"],
                   help="epochs of linear KL warm-up from 0 to --beta (0: none)")
    v.add_argument("--likelihood", choices=("bernoulli", "gaussian"), default=D["likelihood"],
                   help="p(x|z): Bernoulli (BCE from the logits) or Gaussian with sigma 1")
    v.add_argument("--binarize", choices=("dynamic", "none"), default=D["binarize"],
                   help="dynamic: re-sample every training image as Bernoulli(pixel) each epoch, the test set once "
                        "(default for bernoulli)")
    v.add_argument("--is-samples", type=nonnegative_int, default=D["is_samples"],
                   help="importance samples per test image for nll_is (papers use 5000; 0 skips it)")
    t.add_argument("--noise", default=None, help="train on corrupted inputs, e.g. gaussian:0.45, masking:0.3 "
                                                 "(denoising default gaussian:0.45)")
    t.add_argument("--occlusion", type=fraction, default=None, help="train with square occlusions covering fraction p")
    t.add_argument("--val-fraction", type=fraction, default=D["val_fraction"], help="training images held out for validation")
    t.add_argument("--patience", type=positive_int, default=None, help="early stopping patience (epochs)")
    t.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
    t.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    t.add_argument("--resume", metavar="DIR", default=None, help="continue an interrupted run in DIR")
    t.add_argument("--config", metavar="SEARCH.json", default=None,
                   help="start from the best configuration of `scratch-ae search`; options given here win")
    t.add_argument("--code-activation", choices=activations, default=None,
                   help="the code layer's activation (default: --activation)")

    e = command("evaluate", "test metrics of a saved model, optionally under noise or occlusion")
    e.add_argument("model_path", metavar="MODEL.npz", help="a checkpoint written by train")
    common(e, "where evaluation.json goes (default: the model's folder)")
    e.add_argument("--noise", default=None, help="corrupt the test inputs, e.g. gaussian:0.5")
    e.add_argument("--occlusion", type=fraction, default=None, help="occlude a fraction p of each test input")

    r = command("reconstruct", "write a grid of test images, a random-noise image and their reconstructions")
    r.add_argument("model_path", metavar="MODEL.npz", help="a checkpoint written by train")
    common(r, "where reconstruct.png goes (default: the model's folder)")
    r.add_argument("--n", type=positive_int, default=10, help="how many test images")

    command("info", "versions, available backends, Numba, where data is found")

    lab = command("lab", "run a classic autoencoder lab")
    lab.add_argument("name", choices=list(LABS), help="which lab")
    # Each lab knows its own images (colored-denoise runs on colored-mnist), so --dataset has no
    # global default here: left out, the lab's own `run(dataset=...)` default applies.
    common(lab, "output folder (default: runs/lab-NAME, or runs/lab-NAME-quick with --quick)", dataset_default=None,
           dataset_help="which images (default: the lab's own; mnist except colored-denoise: colored-mnist)")
    lab.add_argument("--quick", action="store_true", help="small subset and few epochs")
    lab.add_argument("--epochs", type=positive_int, default=None, help="override the lab's number of epochs")
    lab.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    lab.add_argument("--config", metavar="SEARCH.json", default=None,
                     help="encoded-space: use this search's best configuration")
    from .search import SEARCH_HELP, add_search_arguments
    add_search_arguments(command("search", SEARCH_HELP))
    parser.subcommands = sub.choices
    return parser


def _version():
    from . import __version__
    return __version__


def _given_options(parser, argv, command):
    """The dests of `command`'s options that argv spells out (whatever their values)."""
    sub = parser.subcommands[command]
    saved = {action: action.default for action in sub._actions}
    try:
        for action in sub._actions:
            action.default = argparse.SUPPRESS
        given = vars(parser.parse_args(argv))
    finally:
        for action, default in saved.items():
            action.default = default
    return set(given) - {"command"}


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one clean line that does not tear a progress bar (no source line glued on)."""
    from tqdm import tqdm
    tqdm.write(f"scratch-ae: warning: {message}", file=sys.stderr)


def main(argv=None):
    import warnings
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 0
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("give a command: " + ", ".join(COMMANDS) + " (scratch-ae --help)")
        args.given = _given_options(parser, argv, args.command) if args.command == "train" else set()
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
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
    return (BackendError, CheckpointError, DataError, ValueError, TypeError, FileNotFoundError)


def _fail(exc):
    print(f"scratch-ae: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
    return EXIT_USAGE


def _resume_config(args):
    """The saved run's configuration, with the options --resume may change applied; contradictions refused."""
    from .checkpoint import load_arrays
    from .outputs import check_writable
    check_writable(args.resume, "--resume")
    cfg = load_arrays(os.path.join(args.resume, "resume.npz"))[1]["cli_config"]
    for dest in sorted(args.given - {"resume"}):
        if dest in RESUME_MAY_CHANGE:
            if dest in cfg:
                cfg[dest] = getattr(args, dest)
            continue
        flag = "--" + dest.replace("_", "-")
        saved = cfg.get(dest, "not set")
        raise ValueError(f"argument {flag}: --resume continues the saved run ({dest} = {saved}); only "
                         + ", ".join("--" + d.replace("_", "-") for d in RESUME_MAY_CHANGE) + " may change")
    return cfg


def cmd_train(args):
    import warnings

    from .outputs import check_not_a_finished_run, check_writable, fresh_run_dir
    from .train_job import EXIT_DIVERGED, TrainingInterrupted, run
    from .training import DivergenceWarning
    try:
        if args.resume:
            out, resume = args.resume, True
            try:
                cfg = _resume_config(args)
            except ValueError as exc:
                message = str(exc)
                return _fail(message if message.startswith("argument") else f"argument --resume: {message}")
        else:
            out, resume = args.out or fresh_run_dir(os.path.join("runs", "train")), False
            check_writable(out)
            check_not_a_finished_run(out, args.overwrite)
            cfg = {k: v for k, v in vars(args).items()
                   if k not in ("command", "out", "no_progress", "resume", "overwrite", "given", "config")}
            if args.config:
                from .search import load_search_config
                from .train_job import DEFAULTS as TRAIN_OPTIONS
                cfg.update({k: v for k, v in load_search_config(args.config, TRAIN_OPTIONS).items()
                            if k not in args.given})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # said below, once, as the final line
            metrics = run(cfg, out, progress=not args.no_progress, resume=resume,
                          log=lambda line: print(f"scratch-ae: {line}", file=sys.stderr))
    except TrainingInterrupted as exc:
        print(f"scratch-ae: {exc}; continue with: scratch-ae train --resume {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _user_errors() as exc:
        return _fail(exc)
    wrote = f"wrote {out}/metrics.json" + (", model.npz, figures/" if metrics["test"] else
                                           " only: no model.npz, since its weights would be the initial ones")
    if metrics["diverged"]:
        print(f"scratch-ae: {metrics['stop_reason']}; {wrote}", file=sys.stderr)
        return EXIT_DIVERGED
    if metrics["stop_reason"]:
        print(f"stopped: {metrics['stop_reason']}")
    test = metrics["test"]
    line = f"test: {test['sse_per_image']:.4f} squared error per image ({test['mse_per_pixel']:.6f} per pixel)"
    if "neg_elbo" in metrics:
        nll = "" if metrics["nll_is"] is None else f", NLL {metrics['nll_is']:.2f} ({metrics['is_samples']} importance samples)"
        line = (f"test: negative ELBO {metrics['neg_elbo']:.2f} nats per image{nll}; "
                f"{metrics['active_units']} of {metrics['latent']} latent units active")
    if "test_corrupted" in metrics:
        noisy = metrics["test_corrupted"]
        line = (f"test: {test['sse_per_image']:.4f} squared error per image on clean input, "
                f"{noisy['sse_per_image']:.4f} on {noisy['corruption']}-corrupted input (clean target)")
    print(f"{line}; {wrote}")
    return 0


def _load_model_and_test(args):
    from .data import load_dataset
    from .models import load
    model = load(args.model_path, backend=args.backend)
    test = load_dataset(args.dataset, "test", data_dir=args.data_dir)
    if test.images.shape[1] != model.input_size:
        raise ValueError(f"argument --dataset: {args.dataset} images have {test.images.shape[1]} pixels, "
                         f"the model expects {model.input_size}")
    return model, test


def _output_folder(args):
    """--out, or the model's own folder; checked before the model or any data is loaded."""
    from .outputs import check_writable
    out = args.out or os.path.dirname(os.path.abspath(args.model_path))
    check_writable(out)
    return out


def cmd_evaluate(args):
    import numpy as np

    from .data import parse_corruption
    from .metrics import reconstruction_metrics
    from .train_job import write_json
    try:
        if args.noise and args.occlusion is not None:
            raise ValueError("argument --occlusion: give either --noise or --occlusion, not both")
        out = _output_folder(args)
        model, test = _load_model_and_test(args)
        spec = f"occlusion:{args.occlusion}" if args.occlusion is not None else args.noise
        corrupt = parse_corruption(spec, test.image_shape) if spec else None
        metrics = reconstruction_metrics(model, test.images, corrupt=corrupt, rng=np.random.default_rng(args.seed))
    except _user_errors() as exc:
        return _fail(exc)
    result = {"model": args.model_path, "dataset": args.dataset, "corruption": spec, "test": metrics}
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "evaluation.json")
    write_json(path, result)
    print(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_reconstruct(args):
    import numpy as np

    from .plots import per_image_squared_error, plot_image_rows
    try:
        out = _output_folder(args)
        model, test = _load_model_and_test(args)
    except _user_errors() as exc:
        return _fail(exc)
    originals = test.images[:args.n]
    noise = np.random.default_rng(args.seed).uniform(0, 1, (1, model.input_size)).astype(np.float32)
    inputs = np.concatenate([originals, noise])
    recon = model.inverse_transform(model.transform(inputs))
    path = plot_image_rows([inputs, recon], ["test images + a random-noise image",
                                             "reconstructions (squared error per image below)"],
                           test.image_shape, os.path.join(out, "reconstruct.png"),
                           errors=[None, per_image_squared_error(recon, inputs)])
    print(f"wrote {path}")
    return 0


def cmd_info(args):
    from . import __version__
    from .backend import cupy_unavailable_reason, get_backend
    from .data import DATASETS, dataset_location
    from .jit import numba_unavailable_reason
    from .layers import fused as fused_layers
    from .optimizers import fused as fused_optimizer
    from .train_job import versions
    print(f"scratch-ae {__version__}")
    for name, version in versions(get_backend("numpy")).items():
        print(f"  {name}: {version}")
    reason = cupy_unavailable_reason()
    print("backends:\n  numpy: available")
    print(f"  cupy: {'available' if reason is None else 'unavailable: ' + reason}")
    numba = numba_unavailable_reason()
    if numba is None:
        import numba as numba_module
        used = fused_optimizer.CPU_KERNEL == "numba" and fused_layers.KERNEL == "numba"
        print(f"numba: {numba_module.__version__}, " + ("used for the CPU Adam update and the Dense + ReLU passes"
                                                        if used else "installed but switched off"))
    else:
        print(f"numba: not used: {numba}; the NumPy reference paths run instead (same results)")
    print("data:")
    for name in DATASETS:
        print(f"  {name}: {dataset_location(name)}")
    return 0


def cmd_lab(args):
    from .labs import run_lab
    from .outputs import check_writable
    out = args.out or os.path.join("runs", "lab-" + args.name + ("-quick" if args.quick else ""))
    try:
        if args.config and args.name != "encoded-space":
            raise ValueError("argument --config: only lab encoded-space takes a search configuration")
        check_writable(out)
        results = run_lab(args.name, out, quick=args.quick, backend=args.backend, seed=args.seed,
                          progress=not args.no_progress,
                          **({"dataset": args.dataset} if args.dataset else {}),
                          **({"epochs": args.epochs} if args.epochs else {}),
                          **({"config": args.config} if args.config else {}))
    except _user_errors() as exc:
        return _fail(exc)
    print(f"lab {args.name}: wrote {out}/results.json, results.md and figures/ ({len(results.get('rows', []))} rows)")
    return 0


def cmd_search(args):
    from .search import run_search
    return run_search(args)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "reconstruct": cmd_reconstruct, "info": cmd_info,
            "lab": cmd_lab, "search": cmd_search}

if __name__ == "__main__":
    sys.exit(main())
