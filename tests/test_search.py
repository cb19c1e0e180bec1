"""scratch_ae.search: scikit-learn's sampler and cross-validation, early stopping inside the training
fold only, a reproducible table, search.json and the --config round trip, one-line errors."""
import json

import numpy as np
import pytest
from sklearn.model_selection import KFold, ParameterSampler

from scratch_ae import search as S
from scratch_ae.cli import build_parser, main
from scratch_ae.cli import search as command
from scratch_ae.cli.specs import parse_space
from scratch_ae.data import train_val_split


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def images():
    from scratch_ae.data import load_dataset
    return load_dataset("mnist", "train", limit=600).images


def cli(argv):
    """`scratch-ae search ARGV` in process: the exit status."""
    return main(["search", *argv])


# ---------------------------------------------------------------------------- the space
def test_the_default_space_is_the_labs():
    space = parse_space()
    assert space["lr"] == {"low": 5e-4, "high": 5e-2, "log": True}
    assert space["weight_decay"] == {"low": 5e-5, "high": 5e-3, "log": True}
    assert space["dropout"] == {"low": 0.0, "high": 0.5, "log": False}
    assert space["code"] == {"values": [4]}
    assert (S.DEFAULTS["trials"], S.DEFAULTS["folds"], S.DEFAULTS["epochs"], S.DEFAULTS["seed"]) == (30, 3, 45, 0)


def test_space_flags_json_strings_and_json_files(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"weight_decay": {"low": 1e-5, "high": 1e-3, "log": True}, "hidden": [64, 128]}))
    space = parse_space(["lr=1e-4:1e-2:log", "dropout=0:0.3", "code=2,4,8", '{"l1": "0:0.001", "batch_size": 50}',
                           str(path)])
    assert space["lr"] == {"low": 1e-4, "high": 1e-2, "log": True}
    assert space["dropout"] == {"low": 0.0, "high": 0.3, "log": False}
    assert space["code"] == {"values": [2, 4, 8]} and space["batch_size"] == {"values": [50]}
    assert space["l1"] == {"low": 0.0, "high": 0.001, "log": False}
    assert space["weight_decay"]["low"] == 1e-5 and space["hidden"] == {"values": [64, 128]}


@pytest.mark.parametrize("entry, message", [
    ("momentum=0:1", "unknown hyperparameter 'momentum'"),
    ("weight_decay=0:1e-2:log", "log-uniform range needs low > 0"),
    ("lr=0:1e-2", "lr must be > 0"),
    ("lr=1e-2:1e-4", "low must be below high"),
    ("dropout=0:1", r"dropout \(the drop probability\) must lie in \[0, 1\)"),
    ("code=2:8", "takes a list of integers"),
    ("code=4.5", "expected positive integers"),
    ("lr=fast", "expected a number, got 'fast'"),
    ("lr", "expected name=low:high"),
    ("{not json", "cannot read"),
    ("missing.json", "no such file"),
])
def test_bad_space_entries_are_one_line_naming_the_argument(entry, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse_space([entry])
    assert str(caught.value).startswith("argument --space:") and "\n" not in str(caught.value)


def test_trials_are_drawn_by_sklearns_parameter_sampler_with_scipy_distributions():
    space = parse_space()
    trials = S.sample_trials(space, 30, seed=7)
    reference = list(ParameterSampler(S.distributions(space), n_iter=30, random_state=7))
    assert [t["lr"] for t in trials] == [r["lr"] for r in reference]
    assert all(5e-4 <= t["lr"] <= 5e-2 and 5e-5 <= t["weight_decay"] <= 5e-3 and 0 <= t["dropout"] <= 0.5
               and t["code"] == 4 for t in trials)
    # log-uniform: half the draws fall below the geometric mean of the bounds
    lrs = np.array([t["lr"] for t in S.sample_trials(space, 4000, seed=1)])
    assert abs((lrs < np.sqrt(5e-4 * 5e-2)).mean() - 0.5) < 0.03
    assert S.sample_trials(space, 5, seed=7) == trials[:5] and S.sample_trials(space, 5, seed=8) != trials[:5]


# ---------------------------------------------------------------------------- cross-validation
def test_early_stopping_inside_cv_only_ever_evaluates_rows_of_the_training_fold(images, monkeypatch):
    """Spy on Trainer.evaluate: every row it scores lies in the fold's training part, never in the
    held-out fold, and they are exactly the validation rows the model carves from its training part."""
    from scratch_ae.training import Trainer
    X = images[:300]
    index = {row.tobytes(): i for i, row in enumerate(X)}
    assert len(index) == len(X)  # the rows are distinct, so a row names its index
    seen = []
    original = Trainer.evaluate

    def spy(self, data):
        seen.append(sorted(index[row.tobytes()] for row in np.asarray(data, dtype=np.float32)))
        return original(self, data)
    monkeypatch.setattr(Trainer, "evaluate", spy)
    settings = dict(folds=3, epochs=4, seed=5, patience=1, early_stopping=True, validation_fraction=0.2,
                    hidden=[32], code_activation="identity", batch_size=50, backend="numpy")
    outcome = S.evaluate_trial(X, {"lr": 3e-3, "code": 4}, settings)
    assert outcome["diverged_folds"] == 0 and min(outcome["epochs_run"]) >= 2
    folds = list(KFold(3, shuffle=True, random_state=5).split(X))
    # epochs evaluated per fold, in order: the fold's model evaluates once per epoch it ran
    starts = np.cumsum([0] + outcome["epochs_run"])
    assert len(seen) == starts[-1]
    for (train_idx, test_idx), a, b in zip(folds, starts[:-1], starts[1:]):
        held_out = set(test_idx.tolist())
        _, _, val_rows, _ = train_val_split(train_idx, train_idx, 0.2, 5)  # the carved rows, by index
        for rows in seen[a:b]:
            assert not held_out & set(rows)
            assert rows == sorted(val_rows.tolist())


def test_the_held_out_fold_would_have_stopped_the_run_differently(images):
    """The split matters: stopping on the held-out fold gives another validation curve (so the test
    above would catch a model that used it)."""
    from scratch_ae.models import Autoencoder
    X = images[:300]
    train_idx, test_idx = next(KFold(3, shuffle=True, random_state=5).split(X))
    kwargs = dict(sizes=(None, 32, 4), code_activation="identity", epochs=4, lr=3e-3, seed=5, patience=1)
    inner = Autoencoder(early_stopping=True, validation_fraction=0.2, **kwargs).fit(X[train_idx])
    X_tr, _, _, _ = train_val_split(X[train_idx], train_idx, 0.2, 5)
    leaky = Autoencoder(**kwargs).fit(X_tr, X_val=X[test_idx])
    assert len(inner.history_["val_loss"]) >= 2 and not inner.history_["diverged"]
    assert inner.history_["val_loss"] != leaky.history_["val_loss"]


def test_a_seeded_search_reproduces_its_table(images):
    kwargs = dict(trials=3, folds=2, epochs=2, seed=3, hidden=[32], patience=1)
    first, again = S.search(images, **kwargs), S.search(images, **kwargs)
    assert S.format_table(first) == S.format_table(again)
    assert [t["fold_losses"] for t in first["trials"]] == [t["fold_losses"] for t in again["trials"]]
    other = S.search(images, **{**kwargs, "seed": 4})
    assert S.format_table(other) != S.format_table(first)
    losses = [t["mean_val_loss"] for t in first["trials"]]
    assert losses == sorted(losses) and [t["rank"] for t in first["trials"]] == [1, 2, 3]
    best = first["trials"][0]
    assert first["best"]["params"] == best["params"]
    assert best["std_val_loss"] == pytest.approx(np.std(best["fold_losses"]))
    assert best["mean_val_loss"] == pytest.approx(np.mean(best["fold_losses"]))


def test_worker_processes_give_the_same_table(images):
    kwargs = dict(trials=2, folds=2, epochs=1, seed=0, hidden=[16])
    assert S.format_table(S.search(images[:300], n_jobs=2, **kwargs)) == S.format_table(S.search(images[:300], **kwargs))


# ---------------------------------------------------------------------------- the command
def test_quick_search_writes_search_json_and_the_retrain_config(tmp_path, capsys):
    out = tmp_path / "search"
    assert cli(["--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    payload = json.loads((out / "search.json").read_text())
    assert payload["n_trials"] == 3 and payload["folds"] == 2 and payload["seed"] == 0
    assert payload["settings"]["epochs"] == 1 and payload["settings"]["n_train"] == 1000
    assert payload["network"].startswith("784-256-4-256-784")
    assert payload["retrain_command"] == f"scratch-ae train --config {out / 'search.json'}"
    assert payload["command"].startswith("scratch-ae search --quick")
    assert S.format_table(payload) in printed and "retrain with: scratch-ae train --config" in printed
    assert (out / "search.md").read_text().count("\n| ") == 4  # header + 3 trials
    cfg = S.load_search_config(out / "search.json")
    best = payload["best"]["params"]
    assert cfg["lr"] == best["lr"] and cfg["weight_decay"] == best["weight_decay"] and cfg["dropout"] == best["dropout"]
    assert (cfg["model"], cfg["hidden"], cfg["code"], cfg["code_activation"]) == ("deep", "256", 4, "identity")
    assert (cfg["patience"], cfg["val_fraction"], cfg["epochs"], cfg["limit"]) == (5, 0.1, 1, 1000)


def test_a_finished_search_is_not_replaced_without_overwrite(tmp_path, capsys):
    out = tmp_path / "search"
    out.mkdir()
    (out / "search.json").write_text("{}")
    assert cli(["--quick", "--out", str(out)]) == 2
    assert "already holds a search" in capsys.readouterr().err
    assert (out / "search.json").read_text() == "{}"


@pytest.mark.parametrize("argv, message", [
    (["--space", "weight_decay=0:1:log"], "argument --space: weight_decay: a log-uniform range needs low > 0"),
    (["--backend", "cupy", "--n-jobs", "2"], "argument --n-jobs"),
    (["--n-jobs", "0"], "argument --n-jobs"),
    (["--space", "code=0"], "argument --space: code: expected positive integers"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    from scratch_ae.backend import cupy_unavailable_reason
    if "cupy" in argv and cupy_unavailable_reason() is not None:
        message = "scratch-ae: error:"  # the missing GPU is said first, in one line
    out = tmp_path / "never"
    assert cli(["--quick", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_an_output_folder_under_a_file_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert cli(["--quick", "--out", str(tmp_path / "file" / "sub")]) == 2
    assert "argument --out" in capsys.readouterr().err


def test_load_search_config_refuses_what_the_train_command_cannot_apply(tmp_path):
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"train_config": {"lr": 0.01, "code_activation": "identity", "dropout": 0.0}}))
    assert S.load_search_config(path, known_options={"lr", "code_activation"}) == {"lr": 0.01, "code_activation": "identity"}
    with pytest.raises(ValueError, match=r"argument --config: .* sets code_activation = 'identity', which this"):
        S.load_search_config(path, known_options={"lr", "dropout"})
    with pytest.raises(ValueError, match="no such file"):
        S.load_search_config(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="no 'train_config' entry"):
        S.load_search_config(tmp_path / "other.json")


def test_the_search_runs_on_the_cupy_code_paths(stand_in, images):
    """On the NumPy stand-in for CuPy (tests/cupy_stand_in.py): folds are copied to the device by each fit."""
    result = S.search(images[:300], trials=2, folds=2, epochs=1, backend="cupy", hidden=[16])
    assert result["settings"]["backend"] == "cupy" and len(result["trials"]) == 2
    assert all(np.isfinite(t["mean_val_loss"]) for t in result["trials"])


def test_without_argv_the_recorded_command_reruns_the_same_search(tmp_path):
    import shlex
    parser = build_parser()
    args = parser.parse_args(["search", "--quick", "--trials", "2", "--space", "code=4,6", "--out", str(tmp_path / "a"),
                              "--no-progress"])
    args.given = set()
    assert command.run(args) == 0  # no args.argv: the command is rebuilt from the parsed options
    first = json.loads((tmp_path / "a" / "search.json").read_text())
    assert main(shlex.split(first["command"])[1:] + ["--out", str(tmp_path / "b"), "--no-progress"]) == 0
    second = json.loads((tmp_path / "b" / "search.json").read_text())
    assert S.format_table(second) == S.format_table(first) and second["settings"]["n_train"] == 1000
