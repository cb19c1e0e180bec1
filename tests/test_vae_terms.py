"""The VAE's building blocks (derivations/vae.md): the reparameterisation layer, the KL and likelihood
terms against central finite differences in float64 with a random upstream gradient, and the
importance-sampled log-likelihood against numerical quadrature on a model small enough to integrate."""
import math

import numpy as np
import pytest
from scipy.special import logsumexp

from scratch_ae.backend import get_backend
from scratch_ae.gradcheck import check_loss, numerical_gradient, relative_error
from scratch_ae.layers import Dense, Tanh
from scratch_ae.layers.reparameterize import GaussianReparameterize
from scratch_ae.models.vae_terms import (BernoulliNLL, GaussianKL, GaussianNLL, active_units, importance_sampled_nll,
                                         kl_warmup, log_mean_exp, log_normal_pdf, log_standard_normal,
                                         negative_elbo_sampled)

TOL = 1e-6
NUMPY = get_backend("numpy")


def encoder_output(rng, batch, k, logvar_scale=1.0):
    """[mu | logvar] (batch, 2k) in float64, logvar in +-logvar_scale."""
    return np.concatenate([rng.standard_normal((batch, k)), rng.uniform(-logvar_scale, logvar_scale, (batch, k))],
                          axis=1)


def layer_with_seed(seed):
    layer = GaussianReparameterize()
    layer.rng = np.random.default_rng(seed)
    return layer


# ---------------------------------------------------------------------------- the reparameterisation
def test_reparameterize_backward_matches_finite_differences_with_eps_held_fixed():
    rng = np.random.default_rng(0)
    x, G = encoder_output(rng, 5, 3), rng.standard_normal((5, 3))
    layer = layer_with_seed(7)
    z = layer.forward(x)
    eps = layer.eps.copy()
    assert z.shape == (5, 3) and eps.shape == (5, 3) and layer.params == {} and layer.grads == {}
    assert layer.config() == {"type": "gaussian_reparameterize", "logvar_min": -30.0, "logvar_max": 20.0}
    np.testing.assert_allclose(z, x[:, :3] + np.exp(0.5 * x[:, 3:]) * eps, rtol=1e-15)
    grad_x = layer.backward(G)
    assert np.array_equal(layer.eps, eps), "backward must reuse the forward's eps, never redraw it"
    np.testing.assert_allclose(grad_x, np.concatenate([G, G * eps * 0.5 * np.exp(0.5 * x[:, 3:])], axis=1))

    def f():  # the same seed for every evaluation: eps is held fixed, so F is a function of x alone
        layer.rng = np.random.default_rng(7)
        return (layer.forward(x) * G).sum()
    assert relative_error(grad_x, numerical_gradient(f, x)) < TOL


def test_reparameterize_draws_eps_once_per_forward_from_the_layers_rng():
    x = encoder_output(np.random.default_rng(1), 4, 2)
    a, b = layer_with_seed(3), layer_with_seed(3)
    a.forward(x), b.forward(x)
    assert np.array_equal(a.eps, b.eps), "two forwards with the same seed must draw the same eps"
    # exactly B*K normals per forward, in the input's dtype: the next draw continues the same stream
    reference = np.random.default_rng(3).standard_normal((2, 4, 2))
    assert np.array_equal(a.eps, reference[0])
    a.forward(x)
    assert np.array_equal(a.eps, reference[1])
    c = layer_with_seed(3)
    c.forward(x.astype(np.float32))
    assert c.eps.dtype == np.float32 and np.array_equal(c.eps, reference[0].astype(np.float32))


def test_reparameterize_without_rng_raises_and_eval_mode_returns_mu():
    x = encoder_output(np.random.default_rng(2), 3, 2)
    layer = GaussianReparameterize()
    with pytest.raises(ValueError, match="rng"):
        layer.forward(x)
    with pytest.raises(ValueError, match=r"\(B, 2K\)"):
        layer_with_seed(0).forward(x[:, :3])
    layer.training = False
    z = layer.forward(x)
    assert np.array_equal(z, x[:, :2]) and layer.eps is None
    G = np.random.default_rng(3).standard_normal((3, 2))
    grad_x = layer.backward(G)
    assert np.array_equal(grad_x, np.concatenate([G, np.zeros_like(G)], axis=1))


def test_the_clamp_masks_the_gradient_outside_its_range_for_z_and_for_the_kl():
    rng = np.random.default_rng(4)
    x = encoder_output(rng, 4, 3)
    x[0, 3], x[1, 4], x[2, 5] = 25.0, -35.0, 19.0        # two clamped (away from the bounds), one inside
    G, beta = rng.standard_normal((4, 3)), 0.7
    layer, kl = layer_with_seed(5), GaussianKL()
    layer.forward(x)
    assert layer.logvar[0, 0] == 20.0 and layer.logvar[1, 1] == -30.0 and layer.logvar[2, 2] == 19.0
    kl.forward(layer.mu, layer.logvar)
    d_mu, d_logvar = kl.backward()
    grad_x = layer.backward(G, beta * d_mu, beta * d_logvar)
    assert grad_x[0, 3] == 0.0 and grad_x[1, 4] == 0.0 and grad_x[2, 5] != 0.0

    def f():
        layer.rng = np.random.default_rng(5)
        z = layer.forward(x)
        return (z * G).sum() + beta * kl.forward(layer.mu, layer.logvar)
    assert relative_error(grad_x, numerical_gradient(f, x)) < TOL


def test_a_huge_logvar_in_float32_gives_finite_values_and_gradients():
    x = np.zeros((2, 4), dtype=np.float32)
    x[:, 2:] = 1000.0                                    # exp(500) = inf in float32 without the clamp
    x[1, 3] = -1000.0
    layer, kl, nll = layer_with_seed(0), GaussianKL(), BernoulliNLL()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        z = layer.forward(x)
        loss = nll.forward(z, np.ones_like(z)) + kl.forward(layer.mu, layer.logvar)
        grad_x = layer.backward(nll.backward(), *kl.backward())
    assert z.dtype == np.float32 and grad_x.dtype == np.float32
    assert np.isfinite(z).all() and np.isfinite(loss) and np.isfinite(grad_x).all()
    assert (grad_x[:, 2:] == 0.0).all(), "beyond the clamp the log-variance gets no gradient"


# ---------------------------------------------------------------------------- the terms
def test_gaussian_kl_backward_matches_finite_differences_for_mu_and_logvar():
    rng = np.random.default_rng(6)
    mu, logvar = rng.standard_normal((5, 4)), rng.uniform(-2, 2, (5, 4))
    kl = GaussianKL()
    value = kl.forward(mu, logvar)
    assert isinstance(value, np.ndarray) and value.shape == ()
    np.testing.assert_allclose(value, kl.per_example(mu, logvar).mean())
    d_mu, d_logvar = kl.backward()
    f = lambda: kl.forward(mu, logvar)
    assert relative_error(d_mu, numerical_gradient(f, mu)) < TOL
    assert relative_error(d_logvar, numerical_gradient(f, logvar)) < TOL
    assert kl.forward(np.zeros((2, 3)), np.zeros((2, 3))) == 0.0, "KL(N(0, I) || N(0, I)) = 0"


def test_gaussian_kl_matches_a_monte_carlo_estimate_within_its_standard_error():
    """KL(q || p) = E_q[log q(z) - log p(z)], estimated with 200,000 samples per example."""
    rng = np.random.default_rng(7)
    mu, logvar = np.array([[0.0, 0.0], [1.5, -0.5], [-2.0, 1.0]]), np.array([[0.0, -1.0], [0.3, 0.8], [-1.5, 0.2]])
    analytic = GaussianKL().per_example(mu, logvar)
    n = 200_000
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((n,) + mu.shape)      # (n, B, K)
    samples = log_normal_pdf(z, mu, logvar) - log_standard_normal(z)          # (n, B)
    estimate, standard_error = samples.mean(axis=0), samples.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(estimate - analytic) < 4 * standard_error + 1e-12), (analytic, estimate, standard_error)


def test_bernoulli_nll_backward_matches_finite_differences_and_the_naive_form():
    rng = np.random.default_rng(8)
    logits, x = rng.normal(0, 3, (4, 10)), (rng.uniform(size=(4, 10)) > 0.5).astype(np.float64)
    nll = BernoulliNLL()
    assert check_loss(nll, logits, x) < TOL
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(nll.per_example(logits, x), -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(nll.forward(logits, x), nll.per_example(logits, x).mean(), rtol=1e-14)
    np.testing.assert_allclose(nll.backward(), (p - x) / 4, rtol=1e-12)
    extreme = np.array([[-1e4, 1e4, 80.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values = nll.per_example(extreme, np.array([[1.0, 0.0, 1.0]], dtype=np.float32))
    np.testing.assert_allclose(values, [2e4], rtol=1e-6)


def test_gaussian_nll_backward_matches_finite_differences_and_is_sse_over_two_sigma_squared_plus_a_constant():
    rng = np.random.default_rng(9)
    mean, x, sigma = rng.standard_normal((4, 6)), rng.uniform(0, 1, (4, 6)), 0.3
    nll = GaussianNLL(sigma)
    assert check_loss(nll, mean, x) < TOL
    per_example = nll.per_example(mean, x)
    np.testing.assert_allclose(per_example, -log_normal_pdf(x, mean, np.full_like(x, 2 * math.log(sigma))), rtol=1e-12)
    sse = ((x - mean) ** 2).sum(axis=1)
    np.testing.assert_allclose(per_example, sse / (2 * sigma ** 2) + 3 * math.log(2 * math.pi * sigma ** 2), rtol=1e-12)
    nll.forward(mean, x)
    np.testing.assert_allclose(nll.backward(), (mean - x) / (sigma ** 2 * 4), rtol=1e-12)
    with pytest.raises(ValueError, match="sigma"):
        GaussianNLL(0.0)


def test_every_term_keeps_float32_and_returns_0d_arrays():
    rng = np.random.default_rng(10)
    a, b = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    for term, args in [(GaussianKL(), (a, b)), (BernoulliNLL(), (a, (b > 0).astype(np.float32))),
                       (GaussianNLL(np.float64(0.5)), (a, b))]:
        value = term.forward(*args)
        assert isinstance(value, np.ndarray) and value.shape == () and value.dtype == np.float32, term
        grads = term.backward()
        for g in grads if isinstance(grads, tuple) else (grads,):
            assert g.dtype == np.float32 and g.shape == (3, 4), term
        assert term.per_example(*args).dtype == np.float32 and term.per_example(*args).shape == (3,)
    assert log_normal_pdf(a, b, a).dtype == np.float32 and log_standard_normal(a).shape == (3,)
    assert log_mean_exp(a, axis=0).dtype == np.float32


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_recon_plus_beta_kl_through_a_dense_encoder_and_decoder_matches_finite_differences(likelihood):
    """Every parameter of a tiny VAE, loss = NLL + beta * KL with beta != 1, eps held fixed by the seed."""
    rng = np.random.default_rng(11)
    d, k, batch, beta = 6, 2, 5, 0.3
    encoder = Dense.create(d, 2 * k, "glorot", rng, NUMPY, np.float64)
    decoder = [Dense.create(k, 5, "glorot", rng, NUMPY, np.float64), Tanh(),
               Dense.create(5, d, "glorot", rng, NUMPY, np.float64)]
    for layer in (encoder, decoder[0], decoder[2]):
        layer.params["b"][:] = rng.normal(0, 0.5, layer.params["b"].shape)
    x = (rng.uniform(size=(batch, d)) > 0.5).astype(np.float64) if likelihood == "bernoulli" \
        else rng.uniform(0, 1, (batch, d))
    rep, kl = GaussianReparameterize(), GaussianKL()
    nll = BernoulliNLL() if likelihood == "bernoulli" else GaussianNLL(0.5)

    def objective():
        rep.rng = np.random.default_rng(99)
        out = rep.forward(encoder.forward(x))
        for layer in decoder:
            out = layer.forward(out)
        return nll.forward(out, x) + beta * kl.forward(rep.mu, rep.logvar)

    objective()
    grad = nll.backward()
    for layer in reversed(decoder):
        grad = layer.backward(grad)
    d_mu, d_logvar = kl.backward()
    encoder.backward(rep.backward(grad, beta * d_mu, beta * d_logvar))
    analytic = {f"{i}.{name}": layer.grads[name].copy()
                for i, layer in enumerate((encoder, decoder[0], decoder[2])) for name in ("W", "b")}
    for i, layer in enumerate((encoder, decoder[0], decoder[2])):
        for name in ("W", "b"):
            error = relative_error(analytic[f"{i}.{name}"], numerical_gradient(objective, layer.params[name]))
            assert error < TOL, (i, name, error)


def test_kl_warmup_is_linear_then_flat():
    assert [kl_warmup(0.5, e, 4) for e in range(6)] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]
    assert kl_warmup(2.0, 0, 0) == 2.0 and kl_warmup(1.0, 1.5, 3) == 0.5
    with pytest.raises(ValueError):
        kl_warmup(1.0, 1, -1)


# ---------------------------------------------------------------------------- evaluation helpers
def test_log_mean_exp_is_stable_far_below_exps_range():
    a = np.array([[-1e4, -1e4 + math.log(3.0)], [-1e4 - 1.0, -1e4 - 1.0]], dtype=np.float64)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        result = log_mean_exp(a, axis=1)
    np.testing.assert_allclose(result, [-1e4 + math.log(2.0), -1e4 - 1.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(log_mean_exp(a, axis=0), logsumexp(a, axis=0) - math.log(2), rtol=1e-15)
    assert np.isfinite(log_mean_exp(a.astype(np.float32), axis=1)).all()
    assert log_mean_exp(np.array([-np.inf, -np.inf]), axis=0) == -np.inf


def test_log_densities_match_their_closed_forms():
    rng = np.random.default_rng(12)
    z, mu, logvar = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.uniform(-1, 1, (4, 3))
    sd = np.exp(0.5 * logvar)
    expected = (-0.5 * ((z - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)).sum(axis=1)
    np.testing.assert_allclose(log_normal_pdf(z, mu, logvar), expected, rtol=1e-13)
    np.testing.assert_allclose(log_standard_normal(z), log_normal_pdf(z, 0 * z, 0 * z), rtol=1e-13)


def test_active_units_counts_the_units_whose_mean_varies_over_the_data():
    rng = np.random.default_rng(13)
    mu = np.concatenate([rng.normal(0, 1.0, (2000, 3)),       # active: variance ~1
                         rng.normal(0.5, 0.03, (2000, 2)),    # collapsed: variance ~1e-3
                         np.full((2000, 1), 4.0),             # constant
                         rng.normal(0, 0.2, (2000, 1))], axis=1).astype(np.float32)  # variance ~0.04: active
    assert active_units(mu) == 4
    assert active_units(mu, threshold=0.1) == 3
    assert active_units(np.zeros((10, 5))) == 0


# ---------------------------------------------------------------------------- importance sampling
class TinyVAE:
    """A 4-pixel Bernoulli VAE with a k-D latent: Dense encoder, Dense-Tanh-Dense decoder, float64."""

    def __init__(self, k, seed=0):
        rng = np.random.default_rng(seed)
        self.k = k
        self.encoder = Dense.create(4, 2 * k, "glorot", rng, NUMPY, np.float64)
        self.encoder.params["b"][:] = rng.normal(0, 0.3, 2 * k)
        # q's log-variance in about [0.3, 1.3]: q wider than the prior keeps the weights p(x|z) p(z) / q(z|x)
        # bounded, so the IS estimate's error is its Monte-Carlo error alone (no heavy tail of rare huge weights)
        self.encoder.params["W"][:, k:] *= 0.3
        self.encoder.params["b"][k:] = 0.8
        self.decoder = [Dense.create(k, 8, "glorot", rng, NUMPY, np.float64), Tanh(),
                        Dense.create(8, 4, "glorot", rng, NUMPY, np.float64)]
        self.decoder[0].params["W"] *= 3.0
        self.decoder[2].params["W"] *= 3.0
        self.decoder[2].params["b"][:] = rng.normal(0, 1.0, 4)

    def encode(self, x):
        h = self.encoder.forward(x)
        return h[:, :self.k], h[:, self.k:]

    def decode_logits(self, z):
        for layer in self.decoder:
            z = layer.forward(z)
        return z

    def log_px_by_quadrature(self, X):
        """log p(x) = log int p(x|z) N(z; 0, I) dz on a fine grid (a Riemann sum: the tails are negligible)."""
        axis = np.linspace(-8, 8, 4001 if self.k == 1 else 321)
        grid = np.stack(np.meshgrid(*[axis] * self.k, indexing="ij"), axis=-1).reshape(-1, self.k)
        cell = math.log(axis[1] - axis[0]) * self.k
        log_prior = log_standard_normal(grid)
        logits = self.decode_logits(grid)
        nll = BernoulliNLL()
        return np.array([logsumexp(-nll.per_example(logits, np.broadcast_to(x, logits.shape)) + log_prior) + cell
                         for x in X])


ALL_4_PIXEL_IMAGES = np.array([[(i >> b) & 1 for b in range(4)] for i in range(16)], dtype=np.float64)


@pytest.mark.parametrize("k", [1, 2])
def test_importance_sampled_nll_with_many_samples_matches_quadrature(k):
    model = TinyVAE(k)
    exact = -model.log_px_by_quadrature(ALL_4_PIXEL_IMAGES)
    np.testing.assert_allclose(np.exp(-exact).sum(), 1.0, rtol=1e-6)   # p(x) sums to 1 over the 16 images
    replicates = 10                                                  # independent estimates per image
    estimates = importance_sampled_nll(model.encode, model.decode_logits, np.tile(ALL_4_PIXEL_IMAGES, (replicates, 1)),
                                       k=10_000, rng=np.random.default_rng(14), batch_k=2_500, batch_size=16)
    assert estimates.shape == (16 * replicates,) and estimates.dtype == np.float64
    estimates = estimates.reshape(replicates, 16)
    mean, standard_error = estimates.mean(axis=0), estimates.std(axis=0, ddof=1) / math.sqrt(replicates)
    # the bias of the k = 10,000 bound is about Var(w)/(2 k p(x)^2) ~ 1e-4 nats here, well inside the 1e-3 allowed
    assert np.all(np.abs(mean - exact) < 5 * standard_error + 1e-3), (mean - exact, standard_error)
    assert np.max(np.abs(mean - exact)) < 0.03


def test_importance_sampled_nll_is_at_most_the_negative_elbo_and_tightens_with_k():
    model = TinyVAE(1, seed=1)
    X = np.repeat(ALL_4_PIXEL_IMAGES, 200, axis=0)                  # 200 independent estimates per image
    exact = -model.log_px_by_quadrature(ALL_4_PIXEL_IMAGES).mean()
    elbo = negative_elbo_sampled(model.encode, model.decode_logits, X, np.random.default_rng(15), batch_size=800)
    means = {k: importance_sampled_nll(model.encode, model.decode_logits, X, k=k, rng=np.random.default_rng(16 + k),
                                       batch_size=800).mean() for k in (1, 5, 50)}
    standard_error = elbo.std() / math.sqrt(X.shape[0])
    assert abs(means[1] - elbo.mean()) < 5 * standard_error, (means[1], elbo.mean(), standard_error)  # k=1 is the ELBO
    assert exact < means[50] < means[5] < means[1], (exact, means)
    assert elbo.mean() - means[50] > 10 * standard_error, "the test model's ELBO should be visibly loose"


def test_importance_sampled_nll_does_not_depend_on_the_sample_chunk_size():
    model = TinyVAE(2, seed=2)
    results = [importance_sampled_nll(model.encode, model.decode_logits, ALL_4_PIXEL_IMAGES, k=300,
                                      rng=np.random.default_rng(17), batch_k=batch_k, batch_size=5)
               for batch_k in (300, 64, 7, 1)]
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=1e-12)
    with pytest.raises(ValueError, match="likelihood"):
        importance_sampled_nll(model.encode, model.decode_logits, ALL_4_PIXEL_IMAGES, 3, np.random.default_rng(0),
                               likelihood="poisson")


def test_the_gaussian_likelihood_estimators_agree_with_the_exact_log_likelihood_of_a_linear_gaussian_model():
    """z ~ N(0, 1), x|z ~ N(a z + c, s^2 I): p(x) = N(c, a a^T + s^2 I), and the exact posterior as q gives
    log w = log p(x) for every sample, so the IS estimate equals -log p(x) exactly for any k."""
    a, c, s = np.array([[1.0, -0.5, 2.0]]), np.array([0.2, 0.0, -0.3]), 0.7
    cov = a.T @ a + s ** 2 * np.eye(3)
    post_var = 1.0 / (1.0 + (a @ a.T).item() / s ** 2)
    X = np.random.default_rng(18).standard_normal((6, 3))
    encode = lambda x: ((x - c) @ a.T * post_var / s ** 2, np.full((x.shape[0], 1), math.log(post_var)))
    decode = lambda z: z @ a + c
    diff = X - c
    exact = 0.5 * (np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff) + np.linalg.slogdet(cov)[1]
                   + 3 * math.log(2 * math.pi))
    estimate = importance_sampled_nll(encode, decode, X, k=10, rng=np.random.default_rng(19), likelihood="gaussian",
                                      sigma=s, batch_k=3)
    np.testing.assert_allclose(estimate, exact, rtol=1e-10)
    elbo = negative_elbo_sampled(encode, decode, np.repeat(X, 20_000, axis=0), np.random.default_rng(20),
                                 likelihood="gaussian", sigma=s, batch_size=20_000).reshape(6, -1).mean(axis=1)
    np.testing.assert_allclose(elbo, exact, atol=0.05)   # the exact posterior: the ELBO is tight


# ---------------------------------------------------------------------------- CuPy code paths
def test_the_vae_terms_stay_on_the_device_on_the_cupy_stand_in(stand_in):
    import cupy
    rng = np.random.default_rng(21)
    x = cupy.asarray(encoder_output(rng, 4, 3).astype(np.float32))
    target = cupy.asarray((rng.uniform(size=(4, 3)) > 0.5).astype(np.float32))
    layer, kl, nll = GaussianReparameterize(xp=cupy), GaussianKL(), BernoulliNLL()
    layer.rng = np.random.default_rng(0)
    z = layer.forward(x)
    loss = nll.forward(z, target) + 0.5 * kl.forward(layer.mu, layer.logvar)
    d_mu, d_logvar = kl.backward()
    grad_x = layer.backward(nll.backward(), 0.5 * d_mu, 0.5 * d_logvar)
    assert isinstance(grad_x, cupy.ndarray) and isinstance(loss, cupy.ndarray) and grad_x.dtype == np.float32
    assert stand_in.HOST_READS == [], "a training step must not read the device"
    host_x = encoder_output(np.random.default_rng(21), 4, 3)
    host_layer = layer_with_seed(0)
    np.testing.assert_allclose(grad_x.get(), _host_step(host_layer, host_x.astype(np.float32), target.get()),
                               rtol=1e-6)

    model = TinyVAE(1)
    X = cupy.asarray(ALL_4_PIXEL_IMAGES)
    for layer in [model.encoder, model.decoder[0], model.decoder[2]]:
        layer.xp = cupy
        layer.params = {name: cupy.asarray(p) for name, p in layer.params.items()}
    stand_in.HOST_READS.clear()
    on_device = importance_sampled_nll(model.encode, model.decode_logits, X, k=50, rng=np.random.default_rng(22),
                                       batch_size=8)
    assert isinstance(on_device, np.ndarray) and len(stand_in.HOST_READS) == 2, stand_in.HOST_READS  # one per chunk
    host_model = TinyVAE(1)
    on_host = importance_sampled_nll(host_model.encode, host_model.decode_logits, ALL_4_PIXEL_IMAGES, k=50,
                                     rng=np.random.default_rng(22), batch_size=8)
    np.testing.assert_allclose(on_device, on_host, rtol=1e-12)
    assert active_units(model.encode(X)[0]) == active_units(host_model.encode(ALL_4_PIXEL_IMAGES)[0])


def _host_step(layer, x, target):
    nll, kl = BernoulliNLL(), GaussianKL()
    z = layer.forward(x)
    nll.forward(z, target), kl.forward(layer.mu, layer.logvar)
    d_mu, d_logvar = kl.backward()
    return layer.backward(nll.backward(), 0.5 * d_mu, 0.5 * d_logvar)
