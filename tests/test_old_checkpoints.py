"""Checkpoints written before the fast engine (commit f880101, whose configs have no "engine") load
and evaluate as they did then.

tests/data/checkpoints_f880101/ holds small trained dense, pooled-conv, stride-2 conv and VAE models
(the families' default layouts), saved by that commit's code (1-2 epochs on 600 MNIST test images),
and expected_outputs.npz: that code's transform, inverse_transform and score of each, loaded back, on
the last 20 MNIST test images, and the transform of the VAE anchor run's checkpoint
(benchmarks/results/vae-recipe-cosine350-model.npz).  Loaded today, a model gets the default engine,
"auto", which runs what that commit ran by default; on each engine the outputs are the old ones to
float32 rounding (bit for bit on engine "auto" on the machine that wrote them, an Intel AVX-512
Xeon: measured, not asserted, since BLAS rounds differently on other CPUs).
"""
from pathlib import Path

import numpy as np
import pytest

from scratch_ae.fast import unavailable_reason
from scratch_ae.models import VariationalAutoencoder, load
from scratch_ae.checkpoint import load_arrays

DATA = Path(__file__).parent / "data" / "checkpoints_f880101"
RECIPE = Path(__file__).parent.parent / "benchmarks" / "results" / "vae-recipe-cosine350-model.npz"
NAMES = ["dense", "conv", "conv-stride", "vae"]


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA / "expected_outputs.npz") as f:
        return dict(f)


def outputs(model, expected, name):
    probe = expected["probe"]
    return {"transform": model.transform(probe), "inverse_transform": model.inverse_transform(expected[f"{name}.transform"]),
            "score": np.asarray(model.score(probe))}


@pytest.mark.parametrize("name", NAMES)
def test_an_old_checkpoint_loads_with_the_default_engine(name):
    _, config = load_arrays(DATA / f"{name}.npz")
    assert "engine" not in config["model"]  # written before engine= existed
    model = load(DATA / f"{name}.npz")
    assert model.engine == "auto" and model.engine_ == ("reference" if unavailable_reason() else "fast")


@pytest.mark.parametrize("name", NAMES)
def test_an_old_checkpoint_gives_its_old_outputs_on_each_engine(name, expected, engine):
    """To float32 rounding: BLAS rounds differently on other CPUs, and the reference conv products and
    the VAE's reference Bernoulli loss round differently from the fast forms that commit ran by default.
    (On the Xeon that wrote them, engine "auto" gives them bit for bit.)"""
    loaded = load(DATA / f"{name}.npz")
    model = load(DATA / f"{name}.npz", engine=engine)
    assert model.engine == model.engine_ == engine
    for what, got in outputs(model, expected, name).items():
        np.testing.assert_allclose(got, expected[f"{name}.{what}"], rtol=1e-5, atol=1e-6, err_msg=what)
    for what, got in outputs(loaded, expected, name).items():  # as loaded, engine "auto"
        np.testing.assert_allclose(got, expected[f"{name}.{what}"], rtol=1e-5, atol=1e-6, err_msg=what)


def test_the_vae_anchor_runs_checkpoint_encodes_as_it_did(expected):
    model = load(RECIPE)
    assert type(model) is VariationalAutoencoder and model.engine == "auto"
    np.testing.assert_allclose(model.transform(expected["probe"]), expected["recipe.transform"], rtol=1e-5, atol=1e-6)
