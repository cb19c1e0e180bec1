"""`scratch-ae search`: the random search (scratch_ae.search) from the command line, with --resume.

The search itself (sampling, k-fold cross-validation, ranking, search.json) is the library's;
this module parses the options and the --space text (specs.parse_space), claims the output
folder, loads the data, and turns the outcome into an exit status: 0 done, 2 bad input, 3 every
trial diverged (search.json without a train_config), 130 interrupted (the finished trials kept;
`--resume DIR` runs the rest, the same seeded trials, so the final table equals an
uninterrupted search's).  search.json is rewritten after every trial, so even a search killed
outright keeps what it finished and can be resumed.
"""
import os
import shlex

from .common import EXIT_DIVERGED, EXIT_INTERRUPTED, add_common, fail, refuse_changes, say, user_errors
from .specs import SearchSpaceError, parse_space
from .validators import at_least_2, hidden_sizes, n_jobs, open_fraction, positive_int

HELP = ("random search of lr, weight decay, dropout and code size, each trial scored by k-fold "
        "cross-validation on the training set; writes search.json and search.md")
# The options a resumed search keeps from the saved one (the rest may not change).
SAVED = ("dataset", "backend", "engine", "seed", "data_dir", "space", "trials", "folds", "epochs", "patience",
         "no_early_stopping", "validation_fraction", "hidden", "code_activation", "batch_size", "limit", "n_jobs",
         "quick")
RESUME_MAY_CHANGE = ("no_progress", "backend", "data_dir", "engine", "n_jobs")


def add_parser(sub, command):
    from ..layers import ACTIVATIONS
    from ..search import DEFAULT_SPACE, DEFAULTS as D, QUICK as Q, SPACE_NAMES, describe_range
    p = command("search", HELP)
    add_common(p, "output folder (default: a fresh runs/search, runs/search-2, ...; runs/search-quick with --quick)",
               dataset_help="which images (the training split)")
    p.add_argument("--overwrite", action="store_true", help="allow --out to replace a finished search")
    p.add_argument("--resume", metavar="DIR", default=None, help="continue the interrupted search in DIR")
    p.add_argument("--space", action="append", default=None, metavar="SPEC",
                   help="a range: name=low:high[:log], name=a,b,c, or a JSON object or file (repeatable; "
                        "names: " + ", ".join(SPACE_NAMES) + "); default: " +
                        "; ".join(f"{n} {describe_range(s)}" for n, s in DEFAULT_SPACE.items()))
    p.add_argument("--trials", type=positive_int, default=None, help=f"how many trials (default {D['trials']}; quick {Q['trials']})")
    p.add_argument("--folds", type=at_least_2, default=None, help=f"k of k-fold CV (default {D['folds']}; quick {Q['folds']})")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"at most this many epochs per fold (default {D['epochs']}; quick {Q['epochs']})")
    p.add_argument("--patience", type=positive_int, default=D["patience"], help="early stopping patience (epochs)")
    p.add_argument("--no-early-stopping", action="store_true", help="train every fold for all --epochs")
    p.add_argument("--validation-fraction", type=open_fraction, default=D["validation_fraction"],
                   help="share of each fold's training rows held out for early stopping")
    p.add_argument("--hidden", type=hidden_sizes, default=",".join(map(str, D["hidden"])),
                   help="hidden width(s) between the input and the code, comma-separated")
    p.add_argument("--code-activation", choices=list(ACTIVATIONS) + ["linear"], default=D["code_activation"],
                   help="the code layer's activation")
    p.add_argument("--batch-size", type=positive_int, default=D["batch_size"], help="images per step")
    p.add_argument("--limit", type=positive_int, default=None, help=f"use only the first N training images (quick {Q['limit']})")
    p.add_argument("--n-jobs", type=n_jobs, default=1,
                   help="worker processes for a trial's folds (CPU only; -1: all cores; BLAS threads per worker "
                        "= cores // N)")
    p.add_argument("--quick", action="store_true",
                   help=f"a tiny search: {Q['trials']} trials, {Q['folds']} folds, {Q['epochs']} epoch, "
                        f"{Q['limit']} images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or per-trial lines")
    return p


def resolved(args, name):
    """An option's value, or the search's default for it (--quick's where it has one)."""
    from ..search import DEFAULTS, QUICK
    value = getattr(args, name, None)
    if value is not None:
        return value
    return QUICK.get(name, DEFAULTS[name]) if args.quick else DEFAULTS[name]


def command_line(args, argv=None):
    """The command that reruns this search: argv as given, else rebuilt from the parsed options."""
    from ..search import DEFAULTS
    if argv is None:
        argv = []
        for name in ("dataset", "backend", "engine", "seed", "data_dir", "trials", "folds", "epochs", "patience",
                     "validation_fraction", "hidden", "code_activation", "batch_size", "limit", "n_jobs"):
            value = resolved(args, name) if name in DEFAULTS else getattr(args, name, None)
            if value is not None:
                argv += [f"--{name.replace('_', '-')}", str(value)]
        for entry in args.space or ():
            argv += ["--space", str(entry)]
        argv += ["--no-early-stopping"] if args.no_early_stopping else []
    return "scratch-ae search " + shlex.join(str(a) for a in argv)


def _saved_search(args):
    """The interrupted search in args.resume: (payload, args with its saved options); contradictions refused."""
    import json

    from ..search import RESULT_FILE
    path = os.path.join(args.resume, RESULT_FILE)
    try:
        with open(path) as f:
            payload = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"argument --resume: {path} does not exist; give the folder of an interrupted search") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"argument --resume: {path} is not a readable search.json ({type(exc).__name__})") from None
    if not payload.get("partial") or "cli_args" not in payload:
        raise ValueError(f"argument --resume: {args.resume} holds a finished search, not an interrupted one")
    refuse_changes(args, RESUME_MAY_CHANGE, "search", payload["cli_args"])
    for name, value in payload["cli_args"].items():
        if name not in args.given:
            setattr(args, name, value)
    return payload


def run(args):
    from ..backend import get_backend
    from ..data import load_dataset
    from ..outputs import OutputError, claim_folder, claim_fresh_folder
    from ..search import (RESULT_FILE, SearchInterrupted, format_params, format_table, search, train_config,
                          write_outputs)
    claim, payload = None, None
    try:
        if args.resume:
            payload = _saved_search(args)
            claim = claim_folder(args.resume, "--resume")
        elif args.out:
            claim = claim_folder(args.out)
            if not args.overwrite and os.path.exists(os.path.join(args.out, RESULT_FILE)):
                raise OutputError(f"argument --out: {args.out} already holds a search ({RESULT_FILE}); continue an "
                                  f"interrupted one with --resume {args.out}, pass --overwrite to replace it, or "
                                  f"choose another --out")
        else:
            claim = claim_fresh_folder(os.path.join("runs", "search" + ("-quick" if args.quick else "")))
        out = claim.path
        space = args.space if isinstance(args.space, dict) else parse_space(args.space)
        get_backend(args.backend)  # a missing GPU is one line, before the data is loaded
        if args.n_jobs != 1 and args.backend == "cupy":
            raise ValueError("argument --n-jobs: with --backend cupy the workers would queue on one GPU; use --n-jobs 1")
        train = load_dataset(args.dataset, "train", data_dir=args.data_dir, limit=resolved(args, "limit"))
        command = payload["command"] if payload else command_line(args, getattr(args, "argv", None))
        cli_args = {name: resolved(args, name) if name in ("trials", "folds", "epochs", "limit") else getattr(args, name)
                    for name in SAVED}
        cli_args["space"] = space

        def keep(result, **status):
            result = {**result, **status, "cli_args": cli_args}
            result["settings"].update(dataset=args.dataset, limit=resolved(args, "limit"), quick=bool(args.quick),
                                      n_jobs=args.n_jobs)
            if result["best"] is not None and not status:
                result["train_config"] = train_config(result, args.dataset)
            write_outputs(out, result, command)
            return result

        options = dict(trials=resolved(args, "trials"), folds=resolved(args, "folds"), epochs=resolved(args, "epochs"),
                       seed=args.seed, patience=args.patience, early_stopping=not args.no_early_stopping,
                       validation_fraction=args.validation_fraction, hidden=[int(h) for h in str(args.hidden).split(",")],
                       code_activation=args.code_activation, batch_size=args.batch_size, backend=args.backend,
                       engine=args.engine, n_jobs=args.n_jobs)
        if payload:
            say(f"resuming {out}: {len(payload['trials'])} of {payload['n_trials']} trials finished")
        try:
            result = search(train.images, space, progress=not args.no_progress,
                            finished=payload["trials"] if payload else (),
                            on_trial=lambda partial: keep(partial, partial=True), **options)
        except SearchInterrupted as stop:
            keep(stop.result, partial=True, interrupted=True, stopped_in_trial=stop.trial)
            done = len(stop.result["trials"])
            say(f"search interrupted in trial {stop.trial} of {stop.result['n_trials']}; kept {done} finished trial"
                f"{'s' if done != 1 else ''} in {out}/{RESULT_FILE} and search.md; continue with: "
                f"scratch-ae search --resume {out}")
            return EXIT_INTERRUPTED
        result = keep(result)
    except KeyboardInterrupt:  # before the first trial (loading the data): nothing to keep
        if claim is not None and payload is None:
            claim.release(discard=True)
        say("search interrupted before its first trial; nothing written" if payload is None else
            f"search interrupted before it resumed; {args.resume} is as it was")
        return EXIT_INTERRUPTED
    except (SearchSpaceError, *user_errors()) as exc:
        if claim is not None and payload is None:
            claim.release(discard=True)
        return fail(exc)
    finally:
        if claim is not None:
            claim.release()
    path = os.path.join(out, RESULT_FILE)
    print(format_table(result))
    if result["best"] is None:
        say(f"every trial diverged ({result['n_trials']} of {result['n_trials']}), so there is no configuration to "
            f"retrain; wrote {path} (no train_config) and search.md")
        return EXIT_DIVERGED
    best = result["best"]
    diverged = result["diverged_trials"]
    print(f"best: trial {best['trial']} ({format_params(best['params'])}): validation loss "
          f"{best['mean_val_loss']:.4f} +- {best['std_val_loss']:.4f}"
          + (f" ({diverged} diverged trial{'s' if diverged != 1 else ''} ranked last)" if diverged else "")
          + f"; wrote {path} and search.md; retrain with: scratch-ae train --config {path}")
    return 0
