"""`scratch-ae train`: one training run (scratch_ae.train_job.run) with its options, --resume and --config."""
import argparse
import os
import warnings

from .common import EXIT_DIVERGED, EXIT_INTERRUPTED, add_common, fail, refuse_changes, say, user_errors
from .specs import parse_lr_schedule
from .validators import (fraction, hidden_sizes, nonnegative_float, nonnegative_int, open_fraction, positive_float,
                         positive_int)

HELP = "train an autoencoder; writes metrics.json, model.npz and figures/"
# What `--resume DIR` lets the command line change: the rest comes from the saved run.
RESUME_MAY_CHANGE = ("epochs", "no_progress", "backend", "data_dir", "engine")


def add_parser(sub, command):
    from ..layers import ACTIVATIONS
    from ..models.conv import DECODERS
    from ..optimizers import OPTIMIZERS
    from ..train_job import DEFAULTS as D
    from ..train_job import MODELS
    activations = list(ACTIVATIONS) + ["linear"]
    t = command("train", HELP)
    add_common(t, "output folder (default: a fresh runs/train, runs/train-2, ...)")
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
    add_is_samples(v, D["is_samples"])
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
    return t


def add_is_samples(p, default, extra=""):
    p.add_argument("--is-samples", type=nonnegative_int, default=default,
                   help="importance samples per test image for nll_is (papers use 5000; 0 skips it)" + extra)


def given_options(parser, argv):
    """The dests of the options that argv spells out (whatever their values)."""
    saved = {action: action.default for action in parser._actions}
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        given = vars(parser.parse_args(argv))
    finally:
        for action, default in saved.items():
            action.default = default
    return set(given)


def resume_config(args):
    """The saved run's configuration, with the options --resume may change applied; contradictions refused."""
    from ..checkpoint import load_arrays
    from ..outputs import check_writable
    check_writable(args.resume, "--resume")
    cfg = load_arrays(os.path.join(args.resume, "resume.npz"))[1]["cli_config"]
    refuse_changes(args, RESUME_MAY_CHANGE, "run", cfg)
    for dest in args.given & set(RESUME_MAY_CHANGE):
        if dest in cfg or dest == "engine":  # (runs saved before --engine existed lack it)
            cfg[dest] = getattr(args, dest)
    return cfg


def run(args):
    from ..outputs import LOCK_FILE, check_not_a_finished_run, claim_folder, claim_fresh_folder
    from ..train_job import TrainingInterrupted
    from ..train_job import run as run_job
    from ..training import DivergenceWarning
    claim, out, resume = None, args.resume, bool(args.resume)
    try:
        if resume:
            try:
                cfg = resume_config(args)
            except ValueError as exc:
                message = str(exc)
                return fail(message if message.startswith("argument") else f"argument --resume: {message}")
            claim = claim_folder(out, "--resume")
        else:
            claim = claim_folder(args.out) if args.out else claim_fresh_folder(os.path.join("runs", "train"))
            out = claim.path
            check_not_a_finished_run(out, args.overwrite)
            cfg = {k: v for k, v in vars(args).items()
                   if k not in ("command", "out", "no_progress", "resume", "overwrite", "given", "config", "argv")}
            if args.config:
                from ..search import load_search_config
                from ..train_job import DEFAULTS as TRAIN_OPTIONS
                cfg.update({k: v for k, v in load_search_config(args.config, TRAIN_OPTIONS).items()
                            if k not in args.given})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # said below, once, as the final line
            metrics = run_job(cfg, out, progress=not args.no_progress, resume=resume, log=say)
    except TrainingInterrupted as exc:
        say(f"{exc}; continue with: scratch-ae train --resume {out}")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # outside a training step: loading the data, or writing the results
        if resume:
            say(f"train interrupted; continue with: scratch-ae train --resume {out}")
        elif claim is None or not set(os.listdir(claim.path)) - {LOCK_FILE}:
            if claim is not None:
                claim.release(discard=True)
            say("train interrupted before its first step; nothing written")
        else:
            say(f"train interrupted while writing its results; {out} may be incomplete; run it again "
                f"(with --overwrite to reuse {out})")
        return EXIT_INTERRUPTED
    except user_errors() as exc:
        if claim is not None:
            claim.release(discard=True)
        return fail(exc)
    finally:
        if claim is not None:
            claim.release()
    wrote = f"wrote {out}/metrics.json" + (", model.npz, figures/" if metrics["test"] else
                                           " only: no model.npz, since its weights would be the initial ones")
    if metrics["diverged"]:
        say(f"{metrics['stop_reason']}; {wrote}")
        return EXIT_DIVERGED
    if metrics["stop_reason"]:
        print(f"stopped: {metrics['stop_reason']}")
    print(f"{summary_line(metrics)}; {wrote}")
    return 0


def summary_line(metrics):
    test = metrics["test"]
    if "neg_elbo" in metrics:
        nll = "" if metrics["nll_is"] is None else f", NLL {metrics['nll_is']:.2f} ({metrics['is_samples']} importance samples)"
        return (f"test: negative ELBO {metrics['neg_elbo']:.2f} nats per image{nll}; "
                f"{metrics['active_units']} of {metrics['latent']} latent units active")
    if "test_corrupted" in metrics:
        noisy = metrics["test_corrupted"]
        return (f"test: {test['sse_per_image']:.4f} squared error per image on clean input, "
                f"{noisy['sse_per_image']:.4f} on {noisy['corruption']}-corrupted input (clean target)")
    return f"test: {test['sse_per_image']:.4f} squared error per image ({test['mse_per_pixel']:.6f} per pixel)"
