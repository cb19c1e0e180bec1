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
benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments); `--code-activation relu`
gives the project's usual ReLU code.

Defaults (the lab's): 30 trials, 3 folds, lr log-uniform in [5e-4, 5e-2], weight_decay (L2)
log-uniform in [5e-5, 5e-3], dropout uniform in [0, 0.5], code size 4, at most 45 epochs per fold
with early stopping (patience 5), seed 0.  `--quick`: 3 trials, 2 folds, 1 epoch, the first 1000
training images (what the test suite runs).

The space is a dict name -> {"low", "high", "log"} (uniform or log-uniform) or {"values": [...]}
(a list to pick from); names: lr, weight_decay, dropout, l1, code, hidden, batch_size.  The command
line's `--space` text (name=low:high[:log], name=a,b,c, JSON) is parsed by scratch_ae.cli.specs.

Parallelism: `--n-jobs N` runs a trial's folds in N worker processes (joblib's loky, through
cross_validate).  It helps on a multi-core CPU only: on a GPU the workers would queue on one
device, so `--backend cupy` refuses n_jobs > 1.  Each worker's BLAS is limited to
cpu_count // N threads (joblib's inner_max_num_threads), so N workers do not oversubscribe the
cores; for several searches side by side, also run each with OPENBLAS_NUM_THREADS=1.

Output (write_outputs): search.json (every trial's parameters, per-fold losses, mean, std, epochs
run, seconds, diverged folds; the best parameters; seed, folds, the space, the network; with a best
trial, `train_config`, the options of `scratch-ae train` that retrain it, and `retrain_command`) and
search.md (the table).  A trial with a diverged fold is not a result (`is_result`): it is ranked below
every finite trial and is never the best; when every trial diverged, "best" is None.  `search` can
continue an interrupted search (`finished`) and reports each finished trial (`on_trial`), so the
command line keeps search.json current and resumes it (scratch_ae/cli/search.py).  The same seed
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
RESULT_FILE = "search.json"


def check_space(space):
    """`space` (name -> {"low", "high", "log"} or {"values": [...]}, as scratch_ae.cli.specs.parse_space
    builds it from --space text) as a fresh dict; a ValueError naming a malformed entry."""
    out = {}
    for name, spec in space.items():
        if name not in SPACE_NAMES:
            raise ValueError(f"search space: unknown hyperparameter {name!r}; expected one of: " + ", ".join(SPACE_NAMES))
        ok = isinstance(spec, dict) and (("values" in spec and len(spec["values"]) > 0)
                                         or {"low", "high", "log"} <= set(spec))
        if not ok:
            raise ValueError(f"search space: {name}: expected {{'low': .., 'high': .., 'log': ..}} or "
                             f"{{'values': [...]}}, got {spec!r}")
        out[name] = dict(spec)
    return out


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
                  backend=settings["backend"], engine=settings.get("engine", "auto"))
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


def is_result(trial):
    """A trial counts only when no fold diverged and its loss is finite: a diverged fold's score is
    that of the weights restored after the divergence (often the untrained ones), not of training."""
    return not trial["diverged_folds"] and math.isfinite(trial["mean_val_loss"])


# ---------------------------------------------------------------------- the search
class SearchInterrupted(Exception):
    """Ctrl-C during a search: `result` holds the finished trials (as `search` returns them, with
    "interrupted": true) and `trial` the 1-based number of the trial it stopped in."""

    def __init__(self, result, trial):
        super().__init__(f"search interrupted in trial {trial} of {result['n_trials']}")
        self.result, self.trial = result, trial


def search(X, space=None, trials=DEFAULTS["trials"], folds=DEFAULTS["folds"], epochs=DEFAULTS["epochs"],
           seed=DEFAULTS["seed"], patience=DEFAULTS["patience"], early_stopping=True,
           validation_fraction=DEFAULTS["validation_fraction"], hidden=DEFAULTS["hidden"],
           code_activation=DEFAULTS["code_activation"], batch_size=DEFAULTS["batch_size"], backend="numpy",
           engine="auto", n_jobs=1, progress=False, finished=(), on_trial=None):
    """Run the random search on the training images X (N, D); returns a JSON-able dict with
    "trials" ranked (best first: every trial that is a result, by mean validation loss, then the
    diverged ones), "best" (None when every trial diverged, with "all_diverged": true) and "settings".

    space: name -> {"low", "high", "log"} or {"values": [...]} (default DEFAULT_SPACE).
    finished: trials of an earlier, interrupted run of this very search (search.json's "trials"):
    they are kept, not run again, and must be the trials this seed draws.  on_trial(result): called
    after every trial with the result so far (to write it).  Ctrl-C (KeyboardInterrupt, or
    TrainingInterrupted inside a fold) raises SearchInterrupted carrying the finished trials.
    """
    from .training import TrainingInterrupted
    space = check_space(DEFAULT_SPACE if space is None else space)
    if n_jobs != 1 and backend == "cupy":
        raise ValueError("argument --n-jobs: with --backend cupy the workers would queue on one GPU; use --n-jobs 1")
    if not (isinstance(folds, (int, np.integer)) and folds >= 2):
        raise ValueError(f"argument --folds: k-fold cross-validation needs at least 2 folds, got {folds!r}")
    if X.shape[0] < folds:
        raise ValueError(f"argument --folds: {folds} folds need at least {folds} training images, got {X.shape[0]}")
    settings = dict(folds=int(folds), epochs=int(epochs), seed=int(seed), patience=patience if early_stopping else None,
                    early_stopping=bool(early_stopping), validation_fraction=float(validation_fraction),
                    hidden=[int(h) for h in hidden], code_activation=code_activation, batch_size=int(batch_size),
                    backend=backend, engine=engine, n_train=int(X.shape[0]), width=int(X.shape[1]))
    _validate_settings(space, settings)
    sampled = sample_trials(space, trials, seed)
    done = sorted((dict(t) for t in finished), key=lambda t: t["trial"])
    for t in done:
        if not 1 <= t["trial"] <= len(sampled) or t["params"] != sampled[t["trial"] - 1]:
            raise ValueError(f"argument --resume: trial {t['trial']} of the saved search is not the trial this "
                             f"seed and space draw; the saved search and these options differ")
    summary = lambda: summarize(done, space, settings, len(sampled))  # noqa: E731
    bar = _TrialProgress(progress, len(sampled))
    finished_numbers = {t["trial"] for t in done}
    try:
        with _worker_threads(n_jobs):
            for i, trial in enumerate(sampled):
                if i + 1 in finished_numbers:
                    continue
                try:
                    outcome = evaluate_trial(X, trial, settings, n_jobs=n_jobs)
                    done.append({"trial": i + 1, "params": trial, **outcome})
                    bar.update(done[-1], summary()["best"])
                    if on_trial is not None:
                        on_trial(summary())
                except (KeyboardInterrupt, TrainingInterrupted):
                    stopped = min(set(range(1, len(sampled) + 1)) - {t["trial"] for t in done}, default=i + 1)
                    raise SearchInterrupted({**summary(), "interrupted": True, "stopped_in_trial": stopped},
                                            stopped) from None
    finally:
        bar.close()
    return summary()


def summarize(done, space, settings, n_trials):
    """The search's result from its finished trials: ranked, the best (a result, never a diverged
    trial), the space, settings and network."""
    ranked = sorted((dict(t) for t in done),
                    key=lambda t: (not is_result(t), t["mean_val_loss"] if math.isfinite(t["mean_val_loss"])
                                   else math.inf, t["trial"]))
    for rank, trial in enumerate(ranked, 1):
        trial["rank"] = rank
    best = ranked[0] if ranked and is_result(ranked[0]) else None
    settings = dict(settings)
    shown = best["params"] if best else (ranked[0]["params"] if ranked else {})
    settings["sizes"] = [settings["width"], *estimator_params(shown, settings)["sizes"][1:]]
    result = {"trials": ranked, "seed": settings["seed"], "folds": settings["folds"], "n_trials": n_trials,
              "best": None if best is None else {"trial": best["trial"], "params": best["params"],
                                                 "mean_val_loss": best["mean_val_loss"],
                                                 "std_val_loss": best["std_val_loss"]},
              "space": {name: {**spec, "description": describe_range(spec)} for name, spec in space.items()},
              "settings": settings, "network": network_description(settings, shown),
              "validation_loss": "squared reconstruction error per image on the held-out fold (= -score)",
              "diverged_trials": sum(not is_result(t) for t in ranked)}
    if ranked and best is None:
        result["all_diverged"] = True
    return result


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
        """After `trial`; best: the search's "best" so far (None while no trial is a result)."""
        so_far = "no result yet" if best is None else f"{best['mean_val_loss']:.4g}"
        if self.tty:
            self.bar.update(1)
            self.bar.set_postfix(best=so_far)
        elif self.enabled:
            outcome = (f"validation loss {trial['mean_val_loss']:.4g} +- {trial['std_val_loss']:.2g} over "
                       f"{len(trial['fold_losses'])} folds" if is_result(trial)
                       else f"diverged in {diverged_folds(trial)} folds (not a result)")
            print(f"trial {trial['trial']}/{self.total}: {format_params(trial['params'])}: {outcome}, "
                  f"{trial['seconds']:.1f} s (best so far {so_far})", file=sys.stderr, flush=True)

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


def diverged_folds(trial):
    """'2 of 2' (folds that diverged, of all); a non-finite loss without a diverged fold counts all."""
    n = len(trial["fold_losses"])
    return f"{trial['diverged_folds'] or n} of {n}"


def format_table(result, markdown=False):
    """The trials ranked (best first, diverged trials last and marked), one line each, as text or Markdown.

    Only what the seed decides (no timings), so the same seed prints the same table."""
    names = list(result["space"])
    header = ["rank", "trial", *names, "val loss", "std", "epochs"]
    rows = []
    for t in result["trials"]:
        values = [str(t["rank"]), str(t["trial"])]
        values += [(str(t["params"][n]) if isinstance(t["params"][n], int) else f"{t['params'][n]:.3g}") for n in names]
        values += ([f"{t['mean_val_loss']:.4f}", f"{t['std_val_loss']:.4f}"] if is_result(t) else
                   [f"diverged ({diverged_folds(t)} folds)", "-"])
        values += ["/".join(str(e) for e in t["epochs_run"])]
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
           "patience": settings["patience"], "seed": settings["seed"], "backend": settings["backend"],
           "engine": settings.get("engine", "auto")}
    if "l1" in params:
        cfg["l1"] = params["l1"]
    if settings["early_stopping"]:
        cfg["val_fraction"] = settings["validation_fraction"]
    if settings.get("limit"):
        cfg["limit"] = settings["limit"]  # retrain on the images the search saw; drop it for all of them
    return cfg


# Options of train_config that an older `scratch-ae train` may not know (see load_search_config).
NEW_TRAIN_OPTIONS = {"dropout": 0.0, "code_activation": None, "engine": "auto"}


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


def status_line(result, out_dir):
    """What the search came to, in one sentence: the best trial, or why there is none."""
    best = result["best"]
    if result.get("interrupted"):
        done = len(result["trials"])
        head = (f"Interrupted in trial {result['stopped_in_trial']} of {result['n_trials']}; {done} finished trial"
                f"{'s' if done != 1 else ''} kept. Continue with: `scratch-ae search --resume {out_dir}`.")
        return head + ("" if best is None else f" Best so far: trial {best['trial']} ({format_params(best['params'])}), "
                                               f"validation loss {best['mean_val_loss']:.4f}.")
    if best is None:
        return (f"Every trial diverged ({result['n_trials']} of {result['n_trials']}): no configuration to "
                f"retrain; lower the learning rates of the space.")
    return (f"Best: trial {best['trial']} ({format_params(best['params'])}), validation loss "
            f"{best['mean_val_loss']:.4f} +- {best['std_val_loss']:.4f}.")


def write_outputs(out_dir, result, command=None):
    """search.json and search.md in out_dir (atomically); a retrain command only when there is a best trial."""
    from .train_job import write_json
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, RESULT_FILE)
    result = dict(result)
    finished = result["best"] is not None and not result.get("interrupted")
    if finished:
        result["retrain_command"] = f"scratch-ae train --config {path}"
    if command:
        result["command"] = command
    write_json(path, result)
    settings = result["settings"]
    lines = ["# Random search with k-fold cross-validation", "",
             f"{result['n_trials']} trials, {result['folds']} folds on {settings['n_train']} training "
             f"images, seed {result['seed']}; network {result['network']}; at most {settings['epochs']} "
             f"epoch{'s' if settings['epochs'] != 1 else ''} per fold" + (
                 f", early stopping (patience {settings['patience']}, validation "
                 f"{settings['validation_fraction']:g} of the fold's training rows)" if settings["early_stopping"] else "")
             + ".",
             "Validation loss: " + result["validation_loss"] + "; std over the folds. A trial with a diverged fold "
             "is not a result: it is marked and ranked last.", "",
             "Space: " + "; ".join(f"{n} {s['description']}" for n, s in result["space"].items()) + ".", "",
             format_table(result, markdown=True), "", status_line(result, out_dir), ""]
    if finished:
        lines += [f"Retrain it: `{result['retrain_command']}`", ""]
    tmp = os.path.join(out_dir, "search.md.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, os.path.join(out_dir, "search.md"))
    return path


__all__ = ["DEFAULT_SPACE", "DEFAULTS", "QUICK", "SearchInterrupted", "search", "summarize", "check_space",
           "sample_trials", "evaluate_trial", "is_result", "load_search_config", "train_config", "format_table",
           "write_outputs"]
