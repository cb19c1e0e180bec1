"""The fast engine's Bernoulli loss (scratch_ae/fast/bernoulli.py) against the reference it replaces,
`models.vae_terms.BernoulliNLL`: loss, cached probabilities and gradient to a stated rounding, on
MNIST-sized batches and extreme logits, and its own backward against finite differences."""
import numpy as np
import pytest

from scratch_ae.fast.bernoulli import SharedExpBernoulliNLL
from scratch_ae.gradcheck import check_loss
from scratch_ae.models.vae_terms import BernoulliNLL

TOL = 1e-6


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-6), (np.float64, 1e-13)])
def test_shared_exp_bernoulli_nll_equals_the_reference_to_rounding(dtype, rtol):
    # The fast engine's loss (one exp(-|l|) for loss and sigmoid, log(1 + e) for log1p(e)) against
    # BernoulliNLL: loss, cached sigmoid and gradient, on MNIST-sized batches and extreme logits.
    rng = np.random.default_rng(12)
    logits = (rng.standard_normal((100, 784)) * 6).astype(dtype)
    logits[0, :6] = [-1e4, 1e4, 80.0, -80.0, 0.0, -0.0]
    x = (rng.uniform(size=logits.shape) < 0.3).astype(dtype)
    reference, fast = BernoulliNLL(), SharedExpBernoulliNLL()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        expected, got = reference.forward(logits, x), fast.forward(logits, x)
    assert got.dtype == expected.dtype == dtype and got.shape == ()
    np.testing.assert_allclose(got, expected, rtol=rtol)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(fast.probs, reference.probs, rtol=0, atol=4 * eps)
    assert fast.probs.dtype == dtype and fast.probs[0, 4] == 0.5 and fast.probs[0, 0] == 0 and fast.probs[0, 1] == 1
    np.testing.assert_allclose(fast.backward(), reference.backward(), rtol=0, atol=4 * eps / 100)
    small = rng.normal(0, 3, (4, 10))
    assert check_loss(SharedExpBernoulliNLL(), small, (rng.uniform(size=(4, 10)) > 0.5).astype(np.float64)) < TOL
