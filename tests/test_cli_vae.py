"""`scratch-ae train --model vae`: the paper-style figures in metrics.json, and its options kept to the VAE."""
import json

import pytest

from scratch_ae.cli import main
from scratch_ae.models import load
from scratch_ae.models.vae import VariationalAutoencoder


def test_train_vae_reports_neg_elbo_nll_kl_reconstruction_and_active_units(tmp_path, capsys):
    out = tmp_path / "vae"
    assert main(["train", "--model", "vae", "--hidden", "64", "--latent", "8", "--limit", "1000", "--epochs", "2",
                 "--is-samples", "50", "--kl-warmup", "1", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_binarized"] is True and metrics["is_samples"] == 50
    assert metrics["neg_elbo"] == pytest.approx(metrics["kl"] + metrics["reconstruction"], rel=1e-6)
    assert 50 < metrics["nll_is"] < metrics["neg_elbo"] < 400
    assert 0 <= metrics["active_units"] <= metrics["latent"] == 8
    assert metrics["config"]["output_activation"] == "sigmoid"
    assert {p.name for p in (out / "figures").iterdir()} == {"loss_curves.png", "reconstructions.png", "samples.png"}
    assert isinstance(load(out / "model.npz"), VariationalAutoencoder)
    assert "negative ELBO" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--model", "vae", "--l1", "0.1"], "argument --l1: --model vae does not take it"),
    (["--model", "vae", "--code", "8"], "give the latent size with --latent"),
    (["--model", "vae", "--loss", "bce"], "choose the --likelihood instead"),
    (["--latent", "8"], "argument --latent: only --model vae has it"),
    (["--model", "deep", "--beta", "2"], "argument --beta: only --model vae has it"),
])
def test_vae_options_and_others_are_kept_apart(argv, message, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "r"), "--limit", "500", "--epochs", "1", "--no-progress"]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "r").exists()
