"""Random search of training hyperparameters, each trial scored by k-fold cross-validation on the training set.

Built on scikit-learn, not on a hand-written sampler: `ParameterSampler` draws the trials from
named ranges (scipy.stats.loguniform for lr and weight decay, scipy.stats.uniform for dropout,
a list for the code size), and every trial is scored by `cross_validate` over a shuffled,
seeded `KFold` of the training images.  The test set is never touched.  A trial's score is the
estimator's own `score`, minus the squared reconstruction error per image on the held-out fold,
so its *validation loss* is minus the mean score, with the spread (std over folds) beside it.

Early stopping never sees the held-out fold: each fold's model is an `Autoencoder` with
`early_stopping=True`, which carves its validation split (validation_fraction, seeded) from the
fold's *training* rows (tests/test_search.py and tests/test_estimator_checks.py check it).

The network (stated in search.json): 784-256-K-256-784 (`sizes=(None, 256, K)`, the input width
taken from the data), ReLU hidden layers and output, a linear (identity) code, MSE, Adam, batch
100.  The code is linear because a ReLU code of 2-10 units loses units for good (a unit whose input
is negative on every image gets no gradient again; the code-sizes lab's dead-unit counts are in
benchmarks/RESULTS.md, '2026-12-01: figures moved out of code comments'); `--code-activation relu`
gives the project's usual ReLU code.

Defaults (the lab's): 30 trials, 3 folds, lr log-uniform in [5e-4, 5e-2], weight_decay (L2)
log-uniform in [5e-5, 5e-3], dropout uniform in [0, 0.5], code size 4, at most 45 epochs per fold
with early stopping (patience 5), seed 0.  `--quick`: 3 trials, 2 folds, 1 epoch, the first 1000
training images (what the test suite runs).

`--space` changes or adds ranges, repeatable; names: lr, weight_decay, dropout, l1, code, hidden,
batch_size.  Each is `name=low:high` (uniform), `name=low:high:log` (log-uniform), `name=a,b,c`
(a list to pick from) or `name=v` (fixed); or a JSON object, inline or in a file, whose values are
such strings, lists, numbers or {"low": .., "high": .., "log": true}:
    scratch-ae search --space lr=1e-4:1e-2:log --space code=2,4,8
    scratch-ae search --space '{"dropout": "0:0.3", "code": [4, 6]}'

Parallelism: `--n-jobs N` runs a trial's folds in N worker processes (joblib's loky, through
cross_validate).  It helps on a multi-core CPU only: on a GPU the workers would queue on one
device, so `--backend cupy` refuses n_jobs > 1.  Each worker's BLAS is limited to
cpu_count // N threads (joblib's inner_max_num_threads), so N workers do not oversubscribe the
cores; for several searches side by side, also run each with OPENBLAS_NUM_THREADS=1.

Output: search.json (every trial's parameters, per-fold losses, mean, std, epochs run, seconds;
the best parameters; seed, folds, the space, the network; `train_config`, the options of
`scratch-ae train` that retrain the best configuration, and `retrain_command`,
`scratch-ae train --config DIR/search.json`) and search.md (the table), under `--out`
(default runs/search, runs/search-quick with --quick), checked before any work.  The same seed
gives the same trials and the same table (at one BLAS thread; threaded BLAS may move the last digits).
"""
import json
import math
import os
import sys
import time
import warnings

import numpy as np

SPACE_NAMES = ("lr", "weight_decay", "dropout", "l1", "code", "hidden", "batch_size")
INTEGER_NAMES = ("code", "hidden", "batch_size")
DEFAULT_SPACE = {
    "lr": {"low": 5e-4, "high": 5e-2, "log": True},
    "weight_decay": {"low": 5e-5, "high": 5e-3, "log": True},
    "dropout": {"low": 0.0, "high": 0.5, "log": False},
    "code": {"values": [4]},
}
DEFAULTS = dict(trials=30, folds=3, epochs=45, limit=None, patience=5, validation_fraction=0.1, hidden=(256,),
                code_activation="identity", batch_size=100, seed=0)
QUICK = dict(trials=3, folds=2, epochs=1, limit=1000)
SEARCH_HELP = ("random search of lr, weight decay, dropout and code size, each trial scored by k-fold "
               "cross-validation on the training set; writes search.json and search.md")
RESULT_FILE = "search.json"


class SearchSpaceError(ValueError):
    """A --space entry that cannot be parsed or names an unknown hyperparameter."""


# ---------------------------------------------------------------------- the space
def _number(text, name, integer):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SearchSpaceError(f"argument --space: {name}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise SearchSpaceError(f"argument --space: {name}: expected a finite number, got {text!r}")
    if integer:
        if value != int(value) or value < 1:
            raise SearchSpaceError(f"argument --space: {name}: expected positive integers, got {text!r}")
        return int(value)
    return value


def _check_bounds(name, spec):
    """Refuse values no model accepts, here, before any data is loaded."""
    values = spec["values"] if "values" in spec else [spec["low"], spec["high"]]
    for v in values:
        if name == "dropout" and not 0 <= v < 1:
            raise SearchSpaceError(f"argument --space: dropout (the drop probability) must lie in [0, 1), got {v!r}")
        if name in ("lr",) and not v > 0:
            raise SearchSpaceError(f"argument --space: lr must be > 0, got {v!r}")
        if name in ("weight_decay", "l1") and not v >= 0:
            raise SearchSpaceError(f"argument --space: {name} must be >= 0, got {v!r}")
    if "values" not in spec:
        if not spec["low"] < spec["high"]:
            raise SearchSpaceError(f"argument --space: {name}: low must be below high, got {spec['low']!r}:{spec['high']!r}")
        if spec["log"] and not spec["low"] > 0:
            raise SearchSpaceError(f"argument --space: {name}: a log-uniform range needs low > 0, got {spec['low']!r}")
        if name in INTEGER_NAMES:
            raise SearchSpaceError(f"argument --space: {name} takes a list of integers (e.g. {name}=4,8), not a range")
    return spec


def parse_range(name, value):
    """One space entry -> {"low", "high", "log"} or {"values": [...]}; `value` as in the module docstring."""
    if name not in SPACE_NAMES:
        raise SearchSpaceError(f"argument --space: unknown hyperparameter {name!r}; expected one of: "
                               + ", ".join(SPACE_NAMES))
    integer = name in INTEGER_NAMES
    if isinstance(value, dict):
        if "values" in value:
            return parse_range(name, list(value["values"]))
        if set(value) - {"low", "high", "log"} or not {"low", "high"} <= set(value):
            raise SearchSpaceError(f"argument --space: {name}: a range is {{\"low\": .., \"high\": .., \"log\": "
                                   f"true/false}}, got {json.dumps(value)}")
        spec = {"low": _number(value["low"], name, False), "high": _number(value["high"], name, False),
                "log": bool(value.get("log", False))}
    elif isinstance(value, (list, tuple)):
        if not value:
            raise SearchSpaceError(f"argument --space: {name}: the list of values is empty")
        spec = {"values": [_number(v, name, integer) for v in value]}
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        spec = {"values": [_number(value, name, integer)]}
    elif isinstance(value, str):
        text = value.strip()
        if ":" in text:
            parts = text.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "uniform")):
                raise SearchSpaceError(f"argument --space: {name}: expected low:high or low:high:log, got {value!r}")
            spec = {"low": _number(parts[0], name, False), "high": _number(parts[1], name, False),
                    "log": len(parts) == 3 and parts[2] == "log"}
        else:
            spec = {"values": [_number(v, name, integer) for v in text.split(",")]}
    else:
        raise SearchSpaceError(f"argument --space: {name}: cannot read {value!r}")
    return _check_bounds(name, spec)


def parse_space(entries=(), base=None):
    """--space entries (name=spec strings, inline JSON objects or JSON file paths) over `base`
    (DEFAULT_SPACE): a dict name -> spec.  Later entries win."""
    space = {name: dict(spec) for name, spec in (DEFAULT_SPACE if base is None else base).items()}
    for entry in entries or ():
        if isinstance(entry, dict):
            items = entry.items()
        else:
            text = str(entry).strip()
            if text.startswith("{") or text.endswith(".json"):
                try:
                    if text.startswith("{"):
                        obj = json.loads(text)
                    else:
                        with open(text) as f:
                            obj = json.load(f)
                except FileNotFoundError:
                    raise SearchSpaceError(f"argument --space: no such file: {text}") from None
                except (OSError, json.JSONDecodeError) as exc:
                    raise SearchSpaceError(f"argument --space: cannot read {text!r} as JSON ({exc})") from None
                if not isinstance(obj, dict):
                    raise SearchSpaceError(f"argument --space: the JSON must be an object of name: range, got {text!r}")
                items = obj.items()
            elif "=" in text:
                name, _, spec = text.partition("=")
                items = [(name.strip(), spec)]
            else:
                raise SearchSpaceError(f"argument --space: expected name=low:high[:log], name=a,b,c or a JSON "
                                       f"object or file, got {text!r}")
        for name, value in items:
            space[name] = parse_range(name, value)
    return space


def describe_range(spec):
    """'log-uniform [0.0005, 0.05]', 'uniform [0, 0.5]' or '[4]'."""
    if "values" in spec:
        return "[" + ", ".join(f"{v:g}" for v in spec["values"]) + "]"
    return f"{'log-uniform' if spec['log'] else 'uniform'} [{spec['low']:g}, {spec['high']:g}]"


def distributions(space):
    """The space as ParameterSampler's param_distributions: scipy.stats frozen distributions and lists."""
    from scipy.stats import loguniform, uniform
    out = {}
    for name, spec in space.items():
        if "values" in spec:
            out[name] = list(spec["values"])
        elif spec["log"]:
            out[name] = loguniform(spec["low"], spec["high"])
        else:
            out[name] = uniform(spec["low"], spec["high"] - spec["low"])
    return out


def sample_trials(space, n_trials, seed):
    """n_trials parameter dicts from sklearn's ParameterSampler, seeded (fewer if the space is a
    finite grid smaller than n_trials: ParameterSampler then draws without replacement)."""
    from sklearn.model_selection import ParameterSampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the total space of parameters is smaller than n_iter"
        trials = list(ParameterSampler(distributions(space), n_iter=n_trials, random_state=seed))
    return [{name: (int(v) if name in INTEGER_NAMES else float(v)) for name, v in sorted(t.items())} for t in trials]


# ---------------------------------------------------------------------- one trial
def estimator_params(trial, settings):
    """Autoencoder keyword arguments for one trial's parameters over the search's settings."""
    hidden = [trial["hidden"]] if "hidden" in trial else list(settings["hidden"])
    code = trial.get("code", settings.get("code", 4))
    params = dict(sizes=(None, *hidden, code), activation="relu", output_activation="relu", loss="mse",
                  code_activation=settings["code_activation"], epochs=settings["epochs"],
                  batch_size=trial.get("batch_size", settings["batch_size"]),
                  early_stopping=settings["early_stopping"], patience=settings["patience"],
                  validation_fraction=settings["validation_fraction"], seed=settings["seed"],
                  backend=settings["backend"])
    for name in ("lr", "weight_decay", "dropout", "l1"):
        if name in trial:
            params[name] = trial[name]
    return params


def evaluate_trial(X, trial, settings, n_jobs=1):
    """cross_validate one trial on X: {"fold_losses", "mean_val_loss", "std_val_loss", "epochs_run", ...}."""
    from sklearn.model_selection import KFold, cross_validate

    from .models import Autoencoder
    from .training import DivergenceWarning
    cv = KFold(n_splits=settings["folds"], shuffle=True, random_state=settings["seed"])
    model = Autoencoder(**estimator_params(trial, settings))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)  # recorded per fold below instead
        result = cross_validate(model, X, cv=cv, n_jobs=n_jobs, return_estimator=True, error_score="raise")
    losses = [-float(s) for s in result["test_score"]]
    histories = [est.history_ for est in result["estimator"]]
    return {"fold_losses": losses, "mean_val_loss": float(np.mean(losses)), "std_val_loss": float(np.std(losses)),
            "epochs_run": [int(h["epochs_run"]) for h in histories],
            "best_epochs": [h["best_epoch"] for h in histories],
            "diverged_folds": int(sum(bool(h["diverged"]) for h in histories)),
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------- the search
def search(X, space=None, trials=DEFAULTS["trials"], folds=DEFAULTS["folds"], epochs=DEFAULTS["epochs"],
           seed=DEFAULTS["seed"], patience=DEFAULTS["patience"], early_stopping=True,
           validation_fraction=DEFAULTS["validation_fraction"], hidden=DEFAULTS["hidden"],
           code_activation=DEFAULTS["code_activation"], batch_size=DEFAULTS["batch_size"], backend="numpy",
           n_jobs=1, progress=False):
    """Run the random search on the training images X (N, D); returns a JSON-able dict with
    "trials" sorted by mean validation loss (best first), "best" and "settings"."""
    space = parse_space(base=space) if space is not None else parse_space()
    if n_jobs != 1 and backend == "cupy":
        raise ValueError("argument --n-jobs: with --backend cupy the workers would queue on one GPU; use --n-jobs 1")
    if not (isinstance(folds, (int, np.integer)) and folds >= 2):
        raise ValueError(f"argument --folds: k-fold cross-validation needs at least 2 folds, got {folds!r}")
    if X.shape[0] < folds:
        raise ValueError(f"argument --folds: {folds} folds need at least {folds} training images, got {X.shape[0]}")
    settings = dict(folds=int(folds), epochs=int(epochs), seed=int(seed), patience=patience if early_stopping else None,
                    early_stopping=bool(early_stopping), validation_fraction=float(validation_fraction),
                    hidden=[int(h) for h in hidden], code_activation=code_activation, batch_size=int(batch_size),
                    backend=backend, n_train=int(X.shape[0]), width=int(X.shape[1]))
    _validate_settings(space, settings)
    sampled = sample_trials(space, trials, seed)
    bar = _TrialProgress(progress, len(sampled))
    done = []
    with _worker_threads(n_jobs):
        for i, trial in enumerate(sampled):
            outcome = evaluate_trial(X, trial, settings, n_jobs=n_jobs)
            done.append({"trial": i + 1, "params": trial, **outcome})
            bar.update(done[-1], min(t["mean_val_loss"] for t in done))
    bar.close()
    ranked = sorted(done, key=lambda t: (not math.isfinite(t["mean_val_loss"]), t["mean_val_loss"], t["trial"]))
    for rank, trial in enumerate(ranked, 1):
        trial["rank"] = rank
    best = ranked[0]
    settings["sizes"] = [settings["width"], *estimator_params(best["params"], settings)["sizes"][1:]]
    return {"trials": ranked, "best": {"trial": best["trial"], "params": best["params"],
                                       "mean_val_loss": best["mean_val_loss"], "std_val_loss": best["std_val_loss"]},
            "seed": int(seed), "folds": int(folds), "n_trials": len(sampled),
            "space": {name: {**spec, "description": describe_range(spec)} for name, spec in space.items()},
            "settings": settings,
            "network": network_description(settings, best["params"]),
            "validation_loss": "squared reconstruction error per image on the held-out fold (= -score)"}


def network_description(settings, params):
    sizes = estimator_params(params, settings)["sizes"]
    widths = [settings["width"], *sizes[1:]]
    widths = widths + widths[-2::-1]
    return (f"{'-'.join(map(str, widths))}: ReLU hidden layers and output, {settings['code_activation']} code, MSE, "
            f"Adam, batch {params.get('batch_size', settings['batch_size'])}")


def _validate_settings(space, settings):
    """Refuse bad settings in one line before any training: build the network a trial would build."""
    from .models import Autoencoder
    if settings["early_stopping"] and not 0 < settings["validation_fraction"] < 1:
        raise ValueError(f"argument --validation-fraction: expected a fraction in (0, 1), got {settings['validation_fraction']!r}")
    probe = {name: (spec["values"][0] if "values" in spec else spec["low"]) for name, spec in space.items()}
    params = estimator_params({k: (int(v) if k in INTEGER_NAMES else v) for k, v in probe.items()}, settings)
    params["sizes"] = (settings["width"], *params["sizes"][1:])
    Autoencoder(**params)  # validates every argument (and the backend) at construction


class _TrialProgress:
    """A bar over trials on a terminal; one line per trial on stderr otherwise; nothing when disabled."""

    def __init__(self, enabled, total):
        from tqdm import tqdm
        self.enabled, self.total = bool(enabled), total
        isatty = getattr(sys.stderr, "isatty", None)
        self.tty = self.enabled and callable(isatty) and isatty()
        self.bar = tqdm(total=total, disable=not self.tty, unit="trial", leave=False, file=sys.stderr)

    def update(self, trial, best):
        if self.tty:
            self.bar.update(1)
            self.bar.set_postfix(best=f"{best:.4g}")
        elif self.enabled:
            print(f"trial {trial['trial']}/{self.total}: {format_params(trial['params'])}: validation loss "
                  f"{trial['mean_val_loss']:.4g} +- {trial['std_val_loss']:.2g} over {len(trial['fold_losses'])} folds, "
                  f"{trial['seconds']:.1f} s (best so far {best:.4g})", file=sys.stderr, flush=True)

    def close(self):
        self.bar.close()


class _worker_threads:
    """With n_jobs > 1: joblib's loky workers, each with cpu_count // n_jobs BLAS threads."""

    def __init__(self, n_jobs):
        self.n_jobs, self.context = n_jobs, None

    def __enter__(self):
        if self.n_jobs not in (1, None):
            from joblib import cpu_count, parallel_config
            workers = cpu_count() if self.n_jobs < 0 else self.n_jobs
            self.context = parallel_config(backend="loky", inner_max_num_threads=max(1, cpu_count() // workers))
            self.context.__enter__()
        return self

    def __exit__(self, *exc):
        if self.context is not None:
            self.context.__exit__(*exc)
        return False


# ---------------------------------------------------------------------- tables and files
def format_params(params):
    return ", ".join(f"{k}={v}" if isinstance(v, int) else f"{k}={v:.3g}" for k, v in sorted(params.items()))


def format_table(result, markdown=False):
    """The trials sorted by mean validation loss (best first), one line each, as text or Markdown.

    Only what the seed decides (no timings), so the same seed prints the same table."""
    names = list(result["space"])
    header = ["rank", "trial", *names, "val loss", "std", "epochs"]
    rows = []
    for t in result["trials"]:
        values = [str(t["rank"]), str(t["trial"])]
        values += [(str(t["params"][n]) if isinstance(t["params"][n], int) else f"{t['params'][n]:.3g}") for n in names]
        values += [f"{t['mean_val_loss']:.4f}", f"{t['std_val_loss']:.4f}",
                   "/".join(str(e) for e in t["epochs_run"])]
        rows.append(values)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))
    return "\n".join([fmt(header)] + [fmt(r) for r in rows])


def train_config(result, dataset="mnist"):
    """The `scratch-ae train` options that retrain the best configuration (what --config reads)."""
    settings, params = result["settings"], result["best"]["params"]
    sizes = estimator_params(params, settings)["sizes"]
    hidden, code = list(sizes[1:-1]), sizes[-1]
    cfg = {"dataset": dataset, "model": "deep", "hidden": ",".join(str(h) for h in hidden), "code": int(code),
           "activation": "relu", "output_activation": "relu", "loss": "mse",
           "code_activation": settings["code_activation"], "lr": params.get("lr", 1e-3),
           "weight_decay": params.get("weight_decay", 0.0), "dropout": params.get("dropout", 0.0),
           "batch_size": params.get("batch_size", settings["batch_size"]), "epochs": settings["epochs"],
           "patience": settings["patience"], "seed": settings["seed"], "backend": settings["backend"]}
    if "l1" in params:
        cfg["l1"] = params["l1"]
    if settings["early_stopping"]:
        cfg["val_fraction"] = settings["validation_fraction"]
    if settings.get("limit"):
        cfg["limit"] = settings["limit"]  # retrain on the images the search saw; drop it for all of them
    return cfg


# Options of train_config that an older `scratch-ae train` may not know (see load_search_config).
NEW_TRAIN_OPTIONS = {"dropout": 0.0, "code_activation": None}


def load_search_config(path, known_options=None):
    """The `scratch-ae train` options stored in a search.json (its "train_config"), as a dict.

    known_options: the option names the train command supports (e.g. train_job.DEFAULTS); an
    option of the file that it lacks, set to a value other than its neutral default, is refused
    in one ValueError instead of being silently dropped (dropout and code_activation came with
    the search).  Raises ValueError (one line, naming --config) for a missing or malformed file.
    """
    where = f"argument --config: {path}"
    try:
        with open(path) as f:
            payload = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: not a readable search.json ({type(exc).__name__})") from None
    cfg = payload.get("train_config") if isinstance(payload, dict) else None
    if not isinstance(cfg, dict):
        raise ValueError(f"{where}: no 'train_config' entry; give the search.json written by `scratch-ae search`")
    cfg = dict(cfg)
    if known_options is not None:
        known = set(known_options)
        for name, value in list(cfg.items()):
            if name in known:
                continue
            if name in NEW_TRAIN_OPTIONS and value == NEW_TRAIN_OPTIONS[name]:
                del cfg[name]
                continue
            raise ValueError(f"{where}: the best configuration sets {name} = {value!r}, which this "
                             f"`scratch-ae train` cannot apply")
    return cfg


def write_outputs(out_dir, result, command=None):
    from .train_job import write_json
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, RESULT_FILE)
    result = dict(result)
    result["retrain_command"] = f"scratch-ae train --config {path}"
    if command:
        result["command"] = command
    write_json(path, result)
    best = result["best"]
    lines = ["# Random search with k-fold cross-validation", "",
             f"{result['n_trials']} trials, {result['folds']} folds on {result['settings']['n_train']} training "
             f"images, seed {result['seed']}; network {result['network']}; at most {result['settings']['epochs']} "
             f"epoch{'s' if result['settings']['epochs'] != 1 else ''} per fold" + (f", early stopping (patience {result['settings']['patience']}, validation "
                                  f"{result['settings']['validation_fraction']:g} of the fold's training rows)"
                                  if result["settings"]["early_stopping"] else "") + ".",
             "Validation loss: " + result["validation_loss"] + "; std over the folds.", "",
             "Space: " + "; ".join(f"{n} {s['description']}" for n, s in result["space"].items()) + ".", "",
             format_table(result, markdown=True), "",
             f"Best: trial {best['trial']} ({format_params(best['params'])}), validation loss "
             f"{best['mean_val_loss']:.4f} +- {best['std_val_loss']:.4f}.", "",
             f"Retrain it: `{result['retrain_command']}`", ""]
    tmp = os.path.join(out_dir, "search.md.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, os.path.join(out_dir, "search.md"))
    return path


# ---------------------------------------------------------------------- the command line
def add_search_arguments(parser):
    """The options of `scratch-ae search` on an argparse (sub)parser."""
    from .backend import BACKENDS
    from .cli import hidden_sizes, open_fraction, positive_int
    from .data import DATASETS
    from .layers import ACTIVATIONS

    def at_least_2(text):
        value = positive_int(text)
        if value < 2:
            import argparse
            raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}")
        return value

    D, Q = DEFAULTS, QUICK
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="which images (the training split)")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy", help="array backend: CPU or GPU")
    parser.add_argument("--seed", type=int, default=D["seed"], help="seed for the trials, the folds, weights and batches")
    parser.add_argument("--out", default=None, help="output folder (default: runs/search, or runs/search-quick with --quick)")
    parser.add_argument("--data-dir", default=None, help="where to look for (and download) datasets")
    parser.add_argument("--overwrite", action="store_true", help="allow --out to replace a finished search")
    parser.add_argument("--space", action="append", default=None, metavar="SPEC",
                        help="a range: name=low:high[:log], name=a,b,c, or a JSON object or file (repeatable; "
                             "names: " + ", ".join(SPACE_NAMES) + "); default: " +
                             "; ".join(f"{n} {describe_range(s)}" for n, s in DEFAULT_SPACE.items()))
    parser.add_argument("--trials", type=positive_int, default=None, help=f"how many trials (default {D['trials']}; quick {Q['trials']})")
    parser.add_argument("--folds", type=at_least_2, default=None, help=f"k of k-fold CV (default {D['folds']}; quick {Q['folds']})")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help=f"at most this many epochs per fold (default {D['epochs']}; quick {Q['epochs']})")
    parser.add_argument("--patience", type=positive_int, default=D["patience"], help="early stopping patience (epochs)")
    parser.add_argument("--no-early-stopping", action="store_true", help="train every fold for all --epochs")
    parser.add_argument("--validation-fraction", type=open_fraction, default=D["validation_fraction"],
                        help="share of each fold's training rows held out for early stopping")
    parser.add_argument("--hidden", type=hidden_sizes, default=",".join(map(str, D["hidden"])),
                        help="hidden width(s) between the input and the code, comma-separated")
    parser.add_argument("--code-activation", choices=list(ACTIVATIONS) + ["linear"], default=D["code_activation"],
                        help="the code layer's activation")
    parser.add_argument("--batch-size", type=positive_int, default=D["batch_size"], help="images per step")
    parser.add_argument("--limit", type=positive_int, default=None, help=f"use only the first N training images (quick {Q['limit']})")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="worker processes for a trial's folds (CPU only; -1: all cores; BLAS threads per worker "
                             "= cores // N)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a tiny search: {Q['trials']} trials, {Q['folds']} folds, {Q['epochs']} epoch, "
                             f"{Q['limit']} images")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-trial lines")
    return parser


def _resolved(args, name):
    value = getattr(args, name, None)
    if value is not None:
        return value
    return QUICK.get(name, DEFAULTS[name]) if args.quick else DEFAULTS[name]


def _command_line(args, argv=None):
    """The command that reruns this search: argv as given, else rebuilt from the parsed options."""
    import shlex
    if argv is None:
        argv = []
        for name in ("dataset", "backend", "seed", "data_dir", "trials", "folds", "epochs", "patience",
                     "validation_fraction", "hidden", "code_activation", "batch_size", "limit", "n_jobs"):
            value = _resolved(args, name) if name in DEFAULTS else getattr(args, name, None)
            if value is not None:
                argv += [f"--{name.replace('_', '-')}", str(value)]
        for entry in args.space or ():
            argv += ["--space", str(entry)]
        argv += ["--no-early-stopping"] if args.no_early_stopping else []
    return "scratch-ae search " + shlex.join(argv)


def run_search(args, argv=None):
    """`scratch-ae search`: parse, check --out, load the data, search, write; returns the exit status
    (0 done, 2 bad input in one line on stderr, nothing written)."""
    from .backend import BackendError, get_backend
    from .checkpoint import CheckpointError
    from .data import DataError, load_dataset
    from .outputs import check_writable
    out = args.out or os.path.join("runs", "search" + ("-quick" if args.quick else ""))
    try:
        check_writable(out)
        if not args.overwrite and os.path.exists(os.path.join(out, RESULT_FILE)):
            raise ValueError(f"argument --out: {out} already holds a finished search ({RESULT_FILE}); pass "
                             "--overwrite to replace it, or choose another --out")
        if args.n_jobs == 0:
            raise ValueError("argument --n-jobs: expected a positive number of workers or -1, got 0")
        space = parse_space(args.space)
        get_backend(args.backend)  # a missing GPU is one line, before the data is loaded
        if args.n_jobs != 1 and args.backend == "cupy":
            raise ValueError("argument --n-jobs: with --backend cupy the workers would queue on one GPU; use --n-jobs 1")
        train = load_dataset(args.dataset, "train", data_dir=args.data_dir, limit=_resolved(args, "limit"))
        hidden = [int(h) for h in str(args.hidden).split(",")]
        result = search(train.images, space, trials=_resolved(args, "trials"), folds=_resolved(args, "folds"),
                        epochs=_resolved(args, "epochs"), seed=args.seed, patience=args.patience,
                        early_stopping=not args.no_early_stopping, validation_fraction=args.validation_fraction,
                        hidden=hidden, code_activation=args.code_activation, batch_size=args.batch_size,
                        backend=args.backend, n_jobs=args.n_jobs, progress=not args.no_progress)
    except (BackendError, CheckpointError, DataError, ValueError, TypeError, FileNotFoundError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"scratch-ae: error: {message}", file=sys.stderr)
        return 2
    result["settings"].update(dataset=args.dataset, limit=_resolved(args, "limit"), quick=bool(args.quick),
                              n_jobs=args.n_jobs)
    result["train_config"] = train_config(result, args.dataset)
    path = write_outputs(out, result, _command_line(args, argv))
    print(format_table(result))
    best = result["best"]
    print(f"best: trial {best['trial']} ({format_params(best['params'])}): validation loss "
          f"{best['mean_val_loss']:.4f} +- {best['std_val_loss']:.4f}; wrote {path} and search.md; "
          f"retrain with: scratch-ae train --config {path}")
    return 0


__all__ = ["DEFAULT_SPACE", "DEFAULTS", "QUICK", "SEARCH_HELP", "add_search_arguments", "run_search", "search",
           "parse_space", "parse_range", "sample_trials", "load_search_config", "train_config", "format_table"]
