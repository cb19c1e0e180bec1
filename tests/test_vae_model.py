"""The variational autoencoder as a model (scratch_ae/models/vae.py, derivations/vae.md#vae-model).

The whole loss, -log p(x|z) + beta KL, against central finite differences in float64 with the
noise held fixed (the same seed for every pass), for the dense and the conv network and both
likelihoods; the training objective against the evaluation estimators; a small VAE trained on
real MNIST for the importance-sampled likelihood, active units and checkpoints.  The KL and
likelihood terms themselves (finite differences, Monte Carlo, quadrature) are checked in
tests/test_vae_terms.py and not repeated here.
"""
import json

import numpy as np
import pytest

from scratch_ae.gradcheck import numerical_gradient, relative_error
from scratch_ae.models import vae as vae_module  # registers the "vae" family
from scratch_ae.models.vae import VALIDATION_SEED, VariationalAutoencoder, binarize

TOL = 1e-6
SEED = 11  # the generator seed of every pass in a gradient check: the same binarisation and eps each time


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: tiny matrices, and 2-thread OpenBLAS crawls when the cores are shared."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def tiny(encoder="dense", **params):
    """A float64 VAE small enough to difference every parameter: 16 pixels (dense) or 1x6x6 (conv), on
    engine="reference" (the derivation's code) unless `engine` says otherwise."""
    shape = dict(sizes=(16, 8), latent=3) if encoder == "dense" else dict(input_shape=(1, 6, 6), channels=(2, 3),
                                                                         latent=2)
    return VariationalAutoencoder(encoder=encoder, **{"dtype": "float64", "seed": 3, "engine": "reference", **shape, **params})


def finite_difference_errors(model, x):
    """{parameter: relative error} of loss_and_grads against differences of objective, eps held fixed.

    The biases are moved off their initial zeros first: a binarised image with no ink in the
    window is a row of zeros, whose pre-activations would then sit exactly on ReLU's kink."""
    rng = np.random.default_rng(0)
    for name, param in model.parameters().items():
        if name.endswith(".b"):
            param += 0.1 * rng.standard_normal(param.shape)
    loss, grads = model.loss_and_grads(x, rng=np.random.default_rng(SEED), copy=True)
    f = lambda: model.objective(x, rng=np.random.default_rng(SEED))
    assert float(f()) == float(loss), "objective with the same seed must replay loss_and_grads' forward exactly"
    return {name: relative_error(grads[name], numerical_gradient(f, param))
            for name, param in model.parameters().items()}


# ---------------------------------------------------------------------------- gradients of the whole loss
CASES = {
    "dense-bernoulli-dynamic": dict(encoder="dense", likelihood="bernoulli", binarize="dynamic", beta=0.7),
    "dense-bernoulli-tanh-l2": dict(encoder="dense", likelihood="bernoulli", binarize="none", beta=2.5,
                                    activation="tanh", weight_decay=0.03),
    "dense-gaussian": dict(encoder="dense", likelihood="gaussian", sigma=0.6, beta=0.3),
    "conv-bernoulli": dict(encoder="conv", likelihood="bernoulli", binarize="dynamic", beta=1.7),
    "conv-gaussian": dict(encoder="conv", likelihood="gaussian", sigma=1.3, beta=0.4),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_whole_vae_loss_matches_finite_differences_with_the_noise_held_fixed(case, mnist_sample):
    params = CASES[case]
    model = tiny(**params)
    x = mnist_sample(6, width=model.input_size)
    errors = finite_difference_errors(model, x)
    assert set(errors) == set(model.parameters()) and len(errors) == (8 if params["encoder"] == "dense" else 12)
    assert max(errors.values()) < TOL, errors


def test_vae_training_on_the_fast_engine_matches_the_reference_to_rounding(mnist_sample):
    """engine="fast" gives the VAE the shared-exp Bernoulli loss (fast/bernoulli.py), fast layers and the
    fast Adam; ten Adam steps in float32 on MNIST give the reference engine's objectives and weights to
    float32 rounding (the shared exponential rounds differently)."""
    from scratch_ae.fast import unavailable_reason
    from scratch_ae.fast.bernoulli import SharedExpBernoulliNLL
    from scratch_ae.models.vae_terms import BernoulliNLL
    from scratch_ae.optimizers import make_optimizer
    if unavailable_reason() is not None:
        pytest.skip(unavailable_reason())
    x = mnist_sample(64).astype(np.float32)
    runs = {}
    for engine in ("reference", "fast"):
        model = VariationalAutoencoder(sizes=(784, 32), latent=4, seed=5, engine=engine)
        model._build()
        assert model.engine_ == engine
        assert type(model.nll_) is (BernoulliNLL if engine == "reference" else SharedExpBernoulliNLL)
        optimizer, losses = make_optimizer("adam", 1e-3, engine=engine), []
        for step in range(10):
            loss, grads = model.loss_and_grads(x, rng=np.random.default_rng([4, step]))
            optimizer.step(model.parameters(), grads)
            losses.append(float(loss))
        runs[engine] = losses, {name: p.copy() for name, p in model.parameters().items()}
    np.testing.assert_allclose(runs["fast"][0], runs["reference"][0], rtol=1e-5)
    for name, weights in runs["reference"][1].items():
        np.testing.assert_allclose(runs["fast"][1][name], weights, rtol=1e-4, atol=1e-6, err_msg=name)


def test_backward_uses_the_forwards_eps_and_the_seed_replays_it(mnist_sample):
    model = tiny(binarize="dynamic")
    x = mnist_sample(5, width=16)
    layer = model.reparameterize_
    model.loss_and_grads(x, rng=np.random.default_rng(SEED))
    eps, z_input = layer.eps.copy(), layer.mu.copy()
    # the generator's stream: the binarisation's B*D uniforms first, then the B*K normals, once
    stream = np.random.default_rng(SEED)
    stream.random(x.shape)
    np.testing.assert_array_equal(eps, stream.standard_normal(eps.shape))
    model.objective(x, rng=np.random.default_rng(SEED))
    np.testing.assert_array_equal(layer.eps, eps)
    np.testing.assert_array_equal(layer.mu, z_input)
    with pytest.raises(ValueError, match="pass rng"):
        model.loss_and_grads(x)


def test_beta_scales_only_the_kl_gradient_at_mu_and_logvar(mnist_sample):
    """dL/dH = dRec/dH + beta dKL/dH: the difference of two betas' gradients is linear in beta."""
    x = mnist_sample(4, width=16)
    grads = {}
    for beta in (0.0, 1.0, 3.0):
        model = tiny(beta=beta, binarize="none")
        grads[beta] = model.loss_and_grads(x, rng=np.random.default_rng(SEED), copy=True)[1]
    for name in grads[0.0]:
        np.testing.assert_allclose(grads[3.0][name] - grads[0.0][name], 3.0 * (grads[1.0][name] - grads[0.0][name]),
                                   atol=1e-12)
    assert all(np.array_equal(grads[0.0][n], grads[3.0][n]) for n in grads[0.0] if n.startswith("decoder."))


# ---------------------------------------------------------------------------- the objective, validation, warm-up
def test_the_training_objective_is_the_evaluation_estimators_negative_elbo(mnist_sample):
    model = VariationalAutoencoder(sizes=(36, 10), latent=4, likelihood="bernoulli", binarize="none",
                                   dtype="float64", seed=1)
    x = (mnist_sample(8, width=36) > 0.5).astype(np.float64)
    training = float(model.objective(x, rng=np.random.default_rng(5)))
    assert training == pytest.approx(model.negative_elbo(x, rng=np.random.default_rng(5)), rel=1e-12)
    parts = model.kl_and_reconstruction(x, rng=np.random.default_rng(5))
    assert parts["kl"] + parts["reconstruction"] == pytest.approx(parts["negative_elbo"], rel=1e-12)
    assert parts["negative_elbo"] == pytest.approx(training, rel=1e-12) and parts["kl"] > 0
    # without rng: evaluation mode, z = mu (what the Trainer's initial loss measures)
    mu, logvar = model.posterior(x)
    deterministic = (model.nll_.forward(model.decode_logits(mu), x) + model.kl_.forward(mu, logvar))
    assert float(model.objective(x)) == pytest.approx(float(deterministic), rel=1e-12)


def test_validation_is_the_negative_elbo_with_a_fixed_generator_whatever_the_step(mnist_sample):
    model = tiny(binarize="dynamic", beta=4.0)
    x = mnist_sample(6, width=16)
    first = model.reconstruction_loss(x)
    assert isinstance(first, np.ndarray) and first.shape == ()
    model.loss_and_grads(x, rng=np.random.default_rng(123))  # a training step in between changes nothing
    assert float(model.reconstruction_loss(x)) == float(first)
    rng = np.random.default_rng(VALIDATION_SEED)  # beta = 1 and the fixed generator: binarise, then sample
    xb = binarize(x, rng).astype(np.float64)
    unweighted = tiny(binarize="none", beta=1.0)
    assert float(first) == pytest.approx(float(unweighted.objective(xb, rng=rng)), rel=1e-12)
    assert not model.reparameterize_.training, "validation leaves the model in evaluation mode"


def test_dynamic_binarisation_draws_the_target_from_the_steps_generator(mnist_sample):
    x = mnist_sample(6, width=16)
    dynamic, plain = tiny(binarize="dynamic"), tiny(binarize="none")
    g = np.random.default_rng(4)
    xb = binarize(x, g)
    assert xb.dtype == np.float32 and set(np.unique(xb)) <= {0.0, 1.0}
    assert float(dynamic.objective(x, rng=np.random.default_rng(4))) == float(plain.objective(xb.astype(np.float64), rng=g))
    # P(1) = intensity; binary images come back unchanged
    draws = np.mean([binarize(x, np.random.default_rng(s)) for s in range(2000)], axis=0)
    assert np.abs(draws - x).max() < 0.05
    np.testing.assert_array_equal(binarize(xb, np.random.default_rng(9)), xb)
    assert VariationalAutoencoder(likelihood="bernoulli", sizes=(16,), latent=2).binarize_ == "dynamic"
    assert VariationalAutoencoder(likelihood="gaussian", sizes=(16,), latent=2).binarize_ == "none"


def test_kl_warmup_raises_beta_linearly_over_the_epochs(mnist_test_images):
    model = VariationalAutoencoder(sizes=(784, 16), latent=4, beta=0.5, kl_warmup=2, epochs=3, batch_size=100)
    assert model.beta_ == 0.5 and model.start_epoch(0) == 0.0 and model.start_epoch(1) == 0.25
    model.fit(mnist_test_images[:300], X_val=mnist_test_images[300:400])
    assert model.history_["beta"] == [0.0, 0.25, 0.5]
    assert all(np.isfinite(model.history_["val_loss"])) and 0 <= model.history_["active_units"] <= 4


def test_a_vae_whose_loss_becomes_nan_is_stopped_with_the_last_finite_weights(mnist_test_images):
    from scratch_ae.optimizers import make_optimizer
    from scratch_ae.training import DivergenceWarning, Trainer
    model = VariationalAutoencoder(sizes=(784, 16), latent=4, epochs=3, seed=0)
    after_first = {}

    def poison(trainer, epoch, step):
        if epoch == 1 and step == 0:
            model.parameters()["encoder.2.W"][0, 0] = np.nan

    def remember(trainer, epoch):
        if epoch == 0:
            after_first.update(model.state_arrays())

    trainer = Trainer(model, make_optimizer("adam", 1e-3), epochs=3, batch_size=100, seed=0, progress=False,
                      callbacks=[model.kl_warmup_callback, remember], step_callback=poison)
    with pytest.warns(DivergenceWarning, match="nan"):
        history = trainer.fit(mnist_test_images[:300])
    assert history["diverged"] and history["best_epoch"] == 1 and len(history["train_loss"]) == 1
    for name, value in model.state_arrays().items():
        np.testing.assert_array_equal(value, after_first[name])


def test_a_huge_log_variance_is_clamped_so_loss_and_gradients_stay_finite_in_float32(mnist_sample):
    model = VariationalAutoencoder(sizes=(16, 8), latent=3, seed=0)
    model.parameters()["encoder.2.b"][3:] = 1000.0          # raw logvar ~ 1000: exp would overflow float32
    x = mnist_sample(4, width=16).astype(np.float32)
    with np.errstate(over="raise", invalid="raise"):
        loss, grads = model.loss_and_grads(x, rng=np.random.default_rng(0))
    assert isinstance(loss, np.ndarray) and loss.shape == () and loss.dtype == np.float32
    assert all(g.dtype == np.float32 and np.isfinite(g).all() for g in grads.values()) and np.isfinite(loss)
    assert (grads["encoder.2.b"][3:] == 0).all(), "beyond the clamp the log-variance gets no gradient"


# ---------------------------------------------------------------------------- a small VAE on real MNIST
@pytest.fixture(scope="module")
def trained():
    """A 784-64-16 VAE, 3 epochs on 2000 dynamically binarised MNIST training images; 200 test images binarised once."""
    from scratch_ae.data import load_dataset
    train, test = load_dataset("mnist", "train").images[:2000], load_dataset("mnist", "test").images[:200]
    model = VariationalAutoencoder(sizes=(784, 64), latent=16, epochs=3, seed=0).fit(train)
    return model, binarize(test, np.random.default_rng(1))


def test_importance_sampling_tightens_the_negative_elbo_of_a_trained_model(trained):
    model, X = trained
    assert model.history_["train_loss"][-1] < model.history_["train_loss"][0] < model.history_["initial_loss"]
    elbo = model.negative_elbo(X, rng=2)
    iwae = model.nll_importance_sampled(X, k=300, rng=3)
    print(f"3 epochs on 2000 images: -ELBO {elbo:.1f} nats, IS-NLL (k=300) {iwae:.1f} nats")
    # measured: -ELBO 222.1, IS 206.7; 784 log 2 = 543 nats is a decoder that ignores the image
    assert 100 < iwae < elbo - 3 and elbo < 300


def test_active_units_counts_the_latent_units_the_encoder_uses(trained):
    model, X = trained
    assert model.active_units(X) == model.history_["active_units"] == 16
    collapsed = VariationalAutoencoder(**model.get_params())
    collapsed.load_state_arrays(model.state_arrays())
    collapsed.parameters()["encoder.2.W"][:, :5] = 0.0   # mu_0..mu_4 no longer depend on x
    assert collapsed.active_units(X) == 11


def test_transform_returns_mu_and_sample_and_interpolate_decode(trained):
    model, X = trained
    codes = model.transform(X[:10])
    np.testing.assert_array_equal(codes, model.posterior(X[:10])[0])
    np.testing.assert_array_equal(codes, model.transform(X[:10]))           # evaluation mode: no noise
    images = model.sample(7, rng=0)
    assert images.shape == (7, 784) and images.dtype == np.float32 and 0 < images.min() and images.max() < 1
    np.testing.assert_array_equal(images, model.sample(7, rng=0))
    path = model.interpolate(X[0], X[1], steps=5)
    assert path.shape == (5, 784)
    np.testing.assert_allclose(path[[0, -1]], model.inverse_transform(codes[:2]), atol=1e-6)
    # Encoding 3 rows or 10 takes different BLAS kernels (float32 rounding of mu differs by an ulp or
    # so, more on some CPUs than others), hence an absolute tolerance as for the path above.
    np.testing.assert_allclose(model.reconstruct(X[:3]), model.inverse_transform(codes[:3]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("encoder", ["dense", "conv"])
def test_a_checkpoint_round_trip_gives_identical_outputs(tmp_path, mnist_sample, encoder):
    from scratch_ae.checkpoint import load_arrays
    from scratch_ae.models import FAMILIES, load
    assert FAMILIES["vae"] is VariationalAutoencoder
    model = tiny(encoder, likelihood="gaussian", sigma=0.5, beta=2.0, kl_warmup=3, dtype="float32")
    x = mnist_sample(5, width=model.input_size).astype(np.float32)
    model.loss_and_grads(x, rng=np.random.default_rng(0))
    for param in model.parameters().values():  # move off the initial weights
        param += 0.01
    path = tmp_path / "vae.npz"
    model.save(path)
    arrays, config = load_arrays(path)
    assert config["family"] == "vae" and config["layers"] == json.loads(json.dumps(model.layer_description()))
    for twin in (load(path), VariationalAutoencoder.load(path)):
        assert type(twin) is VariationalAutoencoder and twin.get_params() == model._params_for_config()
        np.testing.assert_array_equal(twin.transform(x), model.transform(x))
        np.testing.assert_array_equal(twin.inverse_transform(model.transform(x)), model.inverse_transform(model.transform(x)))
        assert twin.negative_elbo(x, rng=4) == model.negative_elbo(x, rng=4)
        a = model.loss_and_grads(x, rng=np.random.default_rng(5), copy=True)
        b = twin.loss_and_grads(x, rng=np.random.default_rng(5), copy=True)
        assert float(a[0]) == float(b[0]) and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])


def test_layer_description_rebuilds_the_network_from_json():
    model = VariationalAutoencoder(encoder="conv", latent=8, channels=(4, 8))
    layers = json.loads(json.dumps(model.layer_description()))
    assert [e["type"] for e in layers["encoder"]] == ["reshape", "conv2d", "relu", "conv2d", "relu", "flatten",
                                                      "dense", "gaussian_reparameterize"]
    assert layers["encoder"][-2] == {"type": "dense", "in": 8 * 7 * 7, "out": 16}
    assert [e["type"] for e in layers["decoder"]] == ["dense", "relu", "reshape", "conv_transpose2d", "relu",
                                                      "conv_transpose2d", "flatten", "sigmoid"]
    assert [e["output_padding"] for e in layers["decoder"] if "output_padding" in e] == [[0, 0], [0, 0]]
    dense = VariationalAutoencoder(sizes=(784, 200, 100), latent=10)
    widths = [(e["in"], e["out"]) for side in ("encoder", "decoder") for e in dense.layer_description()[side]
              if e["type"] == "dense"]
    assert widths == [(784, 200), (200, 100), (100, 20), (10, 100), (100, 200), (200, 784)]
    assert list(dense.parameters())[:2] == ["encoder.0.W", "encoder.0.b"] and "decoder.4.b" in dense.parameters()
    odd = VariationalAutoencoder(encoder="conv", input_shape=(1, 7, 5), channels=(2, 2), latent=2)
    assert odd.inverse_transform(odd.transform(np.zeros((2, 35)))).shape == (2, 35)


def test_bad_arguments_get_one_line_errors():
    for params, message in [(dict(encoder="rnn"), "unknown encoder"), (dict(latent=0), "latent"),
                            (dict(likelihood="poisson"), "unknown likelihood"), (dict(sigma=0), "sigma"),
                            (dict(beta=-1), "beta"), (dict(binarize="static"), "unknown binarize"),
                            (dict(encoder="conv", input_shape=(1, 3, 3), channels=(2, 2)), "too small")]:
        with pytest.raises(ValueError, match=message):
            VariationalAutoencoder(**params)
    model = VariationalAutoencoder(sizes=(4,), latent=1)
    with pytest.raises(ValueError, match="likelihood='bernoulli' needs data in"):
        model.fit(np.full((10, 4), 3.0))
    VariationalAutoencoder(sizes=(4,), latent=1, likelihood="gaussian", epochs=1).fit(np.full((10, 4), 3.0))


def test_sklearn_clone_and_set_params_rebuild_the_network():
    from sklearn.base import clone
    model = VariationalAutoencoder(sizes=(16, 8), latent=3)
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    twin.set_params(latent=5)
    assert twin.code_size == 5 and twin.parameters()["encoder.2.W"].shape == (8, 10)


# ---------------------------------------------------------------------------- the CuPy code path
def test_vae_training_steps_never_read_the_device_on_the_cupy_stand_in(stand_in, mnist_test_images):
    X = mnist_test_images[:600]
    reads = []
    for batch_size in (100, 50):
        model = VariationalAutoencoder(sizes=(784, 32), latent=4, epochs=2, batch_size=batch_size, backend="cupy")
        stand_in.HOST_READS.clear()
        model.fit(X)
        reads.append(list(stand_in.HOST_READS))
        assert type(model.parameters()["encoder.0.W"]).__module__ == "cupy"
    assert reads[0] == reads[1], "a step must not read the device: 6 and 12 steps per epoch read the same"
    host = VariationalAutoencoder(sizes=(784, 32), latent=4, epochs=2, batch_size=50).fit(X)
    np.testing.assert_allclose(host.history_["train_loss"], model.history_["train_loss"], rtol=1e-5)
