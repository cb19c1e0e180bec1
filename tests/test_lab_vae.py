"""The VAE lab runs end to end in quick mode: nats per test image, its figures, the coloured-MNIST comparison."""
import json

import pytest

from scratch_ae.labs import vae as vae_lab

FIGURES = {"learning_curve.png", "prior_samples.png", "latent_grid_2d.png", "latent_means_2d.png", "tsne_means.png",
           "interpolation.png", "reconstructions.png", "colored_denoising_rows.png"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae-lab")
    return out, vae_lab.run(str(out), quick=True)


def test_the_table_reports_the_negative_elbo_and_a_tighter_importance_sampled_nll(quick_run):
    _, results = quick_run
    rows = {row["model"]: row for row in results["rows"]}
    main = rows["VAE 784-200-200-50 (this run)"]
    two_d = rows["VAE 784-200-200-2 (2-D latent)"]
    for row in (main, two_d):
        assert 50 < row["nll_is"] < row["neg_elbo"] < 400  # nats per image; IS with k > 1 is the tighter bound
        assert row["test_images"] == 500 and row["is_samples"] == vae_lab.QUICK_IS_SAMPLES
        assert row["kl_all_test"] > 0 and row["reconstruction_all_test"] > 0
        assert row["neg_elbo_all_test"] == pytest.approx(row["kl_all_test"] + row["reconstruction_all_test"])
    assert 0 <= main["active_units"] <= 50 and 0 <= two_d["active_units"] <= 2
    published = [row for row in results["rows"] if "published" in row["model"]]
    assert published and published[0]["nll_is"] == 86.76
    history = results["history"]
    assert len(history["train_loss"]) == len(history["val_loss"]) == vae_lab.QUICK_EPOCHS


def test_the_recipe_records_the_backend_and_the_fixed_test_binarisation(quick_run):
    out, results = quick_run
    recipe = results["recipe"]
    assert recipe["backend"] == "numpy" and recipe["quick"] is True
    assert recipe["test_binarization_seed"] == vae_lab.TEST_BINARIZATION_SEED
    assert recipe["colored"]["target"].startswith("clean")
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["recipe"]["backend"] == "numpy" and len(on_disk["rows"]) == len(results["rows"])
    assert "nll_is" in (out / "results.md").read_text()


def test_the_coloured_denoisers_report_mse_and_snr(quick_run):
    _, results = quick_run
    colored = [row for row in results["rows"] if row["part"].startswith("(f)")]
    assert [row["model"].split(",")[0].split(" (")[0] for row in colored] == \
        ["noisy input", "conv autoencoder", "conv VAE 8-16"]
    for row in colored:
        assert row["test_mse_per_pixel"] > 0 and -30 < row["test_snr_db"] < 40


def test_the_figures_exist(quick_run):
    out, _ = quick_run
    figures = {p.name for p in (out / "figures").iterdir()}
    assert FIGURES <= figures
    assert all((out / "figures" / name).stat().st_size > 1000 for name in FIGURES)


def test_the_lab_refuses_another_dataset(tmp_path):
    with pytest.raises(ValueError, match="binarised mnist"):
        vae_lab.run(str(tmp_path), quick=True, dataset="fashion-mnist")
