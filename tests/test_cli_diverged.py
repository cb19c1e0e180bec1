"""Diverged trials and rows are not results: marked, ranked last, never best; exit status 3 when
nothing else is left.  And `evaluate` reports a VAE in nats, as `train` does."""
import json
import warnings

import numpy as np
import pytest

from scratch_ae.cli import main
from scratch_ae.training import DivergenceWarning

QUICK_SEARCH = ["search", "--quick", "--limit", "300", "--no-progress"]


def test_a_search_whose_every_trial_diverges_says_so_in_one_line_and_exits_3(tmp_path, capsys):
    out = tmp_path / "s"
    assert main([*QUICK_SEARCH, "--space", "lr=5:10", "--out", str(out)]) == 3
    captured = capsys.readouterr()
    assert captured.err == (f"scratch-ae: every trial diverged (3 of 3), so there is no configuration to retrain; "
                            f"wrote {out}/search.json (no train_config) and search.md\n")
    payload = json.loads((out / "search.json").read_text())
    assert payload["best"] is None and payload["all_diverged"] is True and "train_config" not in payload
    assert "retrain_command" not in payload
    assert captured.out.count("diverged (2 of 2 folds)") == 3 and "best:" not in captured.out
    assert "Every trial diverged" in (out / "search.md").read_text()
    assert main(["train", "--config", str(out / "search.json"), "--out", str(tmp_path / "t")]) == 2
    assert "no 'train_config' entry" in capsys.readouterr().err


def test_a_diverged_trial_ranks_below_every_finite_one_and_is_never_best(tmp_path, capsys):
    out = tmp_path / "s"
    assert main([*QUICK_SEARCH, "--space", "lr=1e-3,8", "--out", str(out)]) == 0
    payload = json.loads((out / "search.json").read_text())
    diverged = [t for t in payload["trials"] if t["diverged_folds"]]
    finite = [t for t in payload["trials"] if not t["diverged_folds"]]
    assert diverged and finite and payload["diverged_trials"] == len(diverged)
    assert [t["rank"] for t in finite] == list(range(1, len(finite) + 1))  # every finite trial first
    assert payload["best"]["trial"] == finite[0]["trial"] and payload["train_config"]["lr"] == 1e-3
    printed = capsys.readouterr().out
    assert printed.splitlines()[-2].split()[-7:] == ["diverged", "(2", "of", "2", "folds)", "-", "0/0"]
    n = len(diverged)
    assert f"({n} diverged trial{'s' if n > 1 else ''} ranked last)" in printed.splitlines()[-1]


def test_a_lab_row_whose_training_diverged_is_marked_and_the_lab_exits_3(tmp_path):
    from scratch_ae.labs.common import LabRecord, train_autoencoder
    from scratch_ae.data import load_dataset
    X = load_dataset("mnist", "test", limit=200).images
    record = LabRecord(str(tmp_path), "t")
    for lr in (1e-3, 50.0):
        with pytest.warns(DivergenceWarning) if lr > 1 else warnings.catch_warnings():
            model = train_autoencoder(X, record=record, epochs=2, sizes=[784, 16], lr=lr)
        record.add({"lr": lr, "epochs_run": model.history_["epochs_run"]})
    assert [row.get("diverged", False) for row in record.rows] == [False, True]
    partial = json.loads((tmp_path / "results.json").read_text())
    assert partial["partial"] is True and partial["rows"][1]["diverged"] is True


def test_the_lab_command_exits_3_when_a_row_diverged(tmp_path, monkeypatch, capsys):
    import scratch_ae.labs as labs
    monkeypatch.setattr(labs, "run_lab", lambda name, out, **options: {"rows": [{"a": 1}, {"a": 2, "diverged": True}]})
    assert main(["lab", "sparse", "--out", str(tmp_path / "lab")]) == 3
    assert capsys.readouterr().err == (f"scratch-ae: lab sparse: 1 of 2 rows diverged (marked in results.md); wrote "
                                       f"{tmp_path / 'lab'}/results.json, results.md and figures/ (2 rows)\n")


# ---------------------------------------------------------------------------- evaluate in the family's units
@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    assert main(["train", "--model", "vae", "--hidden", "32", "--latent", "4", "--limit", "500", "--epochs", "1",
                 "--is-samples", "20", "--no-progress", "--out", str(out)]) == 0
    return out


def test_evaluate_on_a_vae_reports_what_train_reports_in_nats(vae_run, tmp_path, capsys):
    assert main(["evaluate", str(vae_run / "model.npz"), "--is-samples", "20", "--out", str(tmp_path)]) == 0
    trained = json.loads((vae_run / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "evaluation.json").read_text())
    for name in ("neg_elbo", "nll_is", "kl", "reconstruction", "active_units", "latent", "is_samples",
                 "test_binarized"):
        assert evaluated[name] == trained[name], name  # the same definitions, the same seeds
    assert evaluated["family"] == "vae" and evaluated["nats_on"] == "the test set, binarised once"
    assert evaluated["test"]["sse_per_image"] == pytest.approx(trained["test"]["sse_per_image"])
    assert json.loads(capsys.readouterr().out)["neg_elbo"] == trained["neg_elbo"]


def test_evaluate_on_a_vae_under_noise_says_the_nats_stay_clean(vae_run, tmp_path):
    assert main(["evaluate", str(vae_run / "model.npz"), "--is-samples", "0", "--noise", "gaussian:0.5",
                 "--out", str(tmp_path)]) == 0
    evaluated = json.loads((tmp_path / "evaluation.json").read_text())
    trained = json.loads((vae_run / "metrics.json").read_text())
    assert evaluated["nll_is"] is None and evaluated["neg_elbo"] == trained["neg_elbo"]
    assert evaluated["nats_on"].endswith("not corrupted: --noise applies to the squared errors only")
    assert evaluated["corruption"] == "gaussian:0.5" and np.isfinite(evaluated["test"]["sse_per_image"])
    assert evaluated["test"]["sse_per_image"] != trained["test"]["sse_per_image"]  # of the corrupted inputs


def test_evaluate_refuses_is_samples_for_a_model_without_a_likelihood(tmp_path, capsys):
    out = tmp_path / "dense"
    assert main(["train", "--limit", "300", "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.npz"), "--is-samples", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --is-samples: only a VAE checkpoint" in err
    assert not (out / "evaluation.json").exists()
