"""What derivations/pca-and-linear-autoencoders.md proves about linear autoencoders, checked on training runs.

1. A linear autoencoder trained with MSE reaches the Eckart-Young optimum: PCA's rank-k error.
2. Its decoder spans the top-k principal subspace (principal angles ~ 0), on real MNIST and on
   synthetic Gaussians with a known spectrum and a clear eigen-gap.
3. The ordered principal components (and their variances) are recovered from the trained model.
4. With L2 weight decay the decoder's singular vectors are the principal directions themselves and
   its singular values are sqrt(1 - lambda'/lambda_i); without weight decay they are not.

Every tolerance is a measured value times a modest factor; each comment gives the measurement
(maximum over 4 initialisation seeds on MNIST, over 10 synthetic data sets, on a 2-core CPU).
Models are float64 so that the training noise, not rounding, sets the floor.
"""
import numpy as np
import pytest

from scratch_ae.models import Autoencoder
from scratch_ae.optimizers import make_optimizer
from scratch_ae.pca import (PCA, components_from_linear_autoencoder, decoder_matrix, principal_angles,
                            weight_decay_decoder)
from scratch_ae.training import Trainer

# A step-decayed learning rate: the large steps find the subspace, the small ones remove the
# minibatch noise.  (lr, epochs) per stage, batch size 100.
SCHEDULES = {"adam": [(3e-3, 100), (1e-3, 100), (1e-4, 50)],
             "sgd": [(0.3, 200), (0.1, 100), (0.03, 50)]}


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: LAPACK's SVD on these small matrices is faster so, and a 2-thread OpenBLAS
    slows down ~40x when other processes share the 2 cores (measured 0.2 s vs 8 s per fit)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def train_linear_autoencoder(X, k, seed=0, optimizer="adam", weight_decay=0.0):
    """A D-k-D linear autoencoder (identity activations, float64) trained with MSE by the schedule."""
    model = Autoencoder(sizes=[X.shape[1], k], activation="identity", output_activation="identity",
                        dtype="float64", seed=seed, weight_decay=weight_decay, optimizer=optimizer)
    for stage, (lr, epochs) in enumerate(SCHEDULES[optimizer]):
        Trainer(model, make_optimizer(optimizer, lr), epochs=epochs, batch_size=100, progress=False,
                seed=100 * seed + stage).fit(X)
    return model


def train_sse(model, X):
    recon = model.inverse_transform(model.transform(X))
    return float(((recon - X) ** 2).sum(axis=1).mean())


def sign_free_misalignment(A, B):
    """max_i 1 - |<a_i, b_i>| over the rows of A, B (k, D): 0 when each row is +- its partner."""
    return float((1.0 - np.abs((A * B).sum(axis=1))).max())


# ---------------------------------------------------------------------------- real MNIST
MNIST_K = 6  # MNIST's spectrum has a clear gap after the 6th eigenvalue (2.35 vs 1.77 on these images)


@pytest.fixture(scope="module")
def mnist_run():
    from scratch_ae.data import load_dataset
    X = load_dataset("mnist", "train").images[:2000].astype(np.float64)
    pca = PCA(MNIST_K).fit(X)
    untrained = Autoencoder(sizes=[784, MNIST_K], activation="identity", output_activation="identity",
                            dtype="float64", seed=0)
    return X, pca, train_linear_autoencoder(X, MNIST_K), untrained


def test_linear_autoencoder_reaches_the_eckart_young_optimum_on_mnist(mnist_run):
    X, pca, model, _ = mnist_run
    ae, best = train_sse(model, X), pca.reconstruction_error(X)
    gap = ae / best - 1
    print(f"linear AE {ae:.6f} vs PCA {best:.6f} SSE per image: relative excess {gap:.2e}")
    assert gap >= -1e-12, "no rank-k linear map can beat PCA on its training data (Eckart-Young)"
    assert gap < 2e-5  # measured 3.3e-6 .. 3.9e-6


def test_linear_autoencoder_decoder_spans_the_principal_subspace_on_mnist(mnist_run):
    X, pca, model, untrained = mnist_run
    angles = principal_angles(decoder_matrix(model), pca.components_.T)
    before = principal_angles(decoder_matrix(untrained), pca.components_.T)
    print(f"largest principal angle: {angles.max():.2e} rad after training, {before.max():.3f} rad at init")
    assert before.max() > 1.0  # the test is not vacuous: a random decoder is far from the subspace
    assert angles.max() < 1e-2  # measured 2.3e-3 .. 2.75e-3 rad


def test_ordered_principal_components_are_recovered_from_the_trained_linear_autoencoder_on_mnist(mnist_run):
    X, pca, model, _ = mnist_run
    components, variances = components_from_linear_autoencoder(model, X)
    mis = sign_free_misalignment(components, pca.components_)
    rel = float(np.abs(variances / pca.explained_variance_ - 1).max())
    print(f"recovered components: max 1-|cos| {mis:.2e}; variances max relative error {rel:.2e}")
    assert mis < 2e-5  # measured 1.9e-6 .. 3.0e-6
    assert rel < 2e-5  # measured 2.8e-6 .. 3.6e-6
    # the raw decoder is not the components: the GL(k) freedom leaves its columns anywhere in the subspace
    raw = decoder_matrix(model).T
    raw = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert sign_free_misalignment(raw, pca.components_) > 1e-2


# ---------------------------------------------------------------------------- synthetic data, known spectrum
D, K, N = 20, 3, 2000
SEEDS = range(5)
WEIGHT_DECAY = 0.1  # lambda' = weight_decay * D / 2 = 1: between lambda_{k+1} <= 0.25 and lambda_k >= 2


def synthetic(seed):
    """N x D Gaussian data with a random rotation, a random offset and a known spectrum:
    the top K variances in [2, 6], each >= 1.25 times the next; the other D - K in [0.02, 0.25]."""
    rng = np.random.default_rng(seed)
    while True:
        top = np.sort(rng.uniform(2.0, 6.0, K))[::-1]
        if np.all(top[:-1] / top[1:] >= 1.25):
            break
    spectrum = np.r_[top, rng.uniform(0.02, 0.25, D - K)]
    rotation, _ = np.linalg.qr(rng.standard_normal((D, D)))
    return (rng.standard_normal((N, D)) * np.sqrt(spectrum)) @ rotation.T + rng.uniform(-1, 1, D)


@pytest.fixture(scope="module")
def synthetic_runs():
    runs = {}
    for seed in SEEDS:
        X = synthetic(seed)
        runs[seed] = (X, PCA(K).fit(X), train_linear_autoencoder(X, K, seed=seed))
    return runs


@pytest.mark.parametrize("seed", SEEDS)
def test_property_linear_autoencoder_finds_the_principal_subspace_of_synthetic_data(synthetic_runs, seed):
    X, pca, model = synthetic_runs[seed]
    gap = train_sse(model, X) / pca.reconstruction_error(X) - 1
    angle = principal_angles(decoder_matrix(model), pca.components_.T).max()
    components, _ = components_from_linear_autoencoder(model, X)
    mis = sign_free_misalignment(components, pca.components_)
    print(f"seed {seed}: excess error {gap:.2e}, largest angle {angle:.2e} rad, components 1-|cos| {mis:.2e}")
    assert -1e-12 <= gap < 2e-5  # measured <= 3.4e-6
    assert angle < 5e-3  # measured <= 1.04e-3 rad
    assert mis < 5e-6  # measured <= 5.3e-7


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("seed", SEEDS)
def test_with_weight_decay_the_decoder_singular_vectors_are_the_principal_directions(synthetic_runs, optimizer, seed):
    X, pca, plain = synthetic_runs[seed]
    model = train_linear_autoencoder(X, K, seed=seed, optimizer=optimizer, weight_decay=WEIGHT_DECAY)
    decoder = decoder_matrix(model)                     # (D, K): reconstruction = code @ decoder.T + b
    U, s, _ = np.linalg.svd(decoder, full_matrices=False)
    mis = sign_free_misalignment(U.T, pca.components_)  # no data needed: the weights alone
    eigenvalues = pca.explained_variance_ * (N - 1) / N  # the loss averages over N, not N - 1
    predicted = weight_decay_decoder(eigenvalues, WEIGHT_DECAY, D)
    sv_err = float(np.abs(s - predicted).max())
    asym = float(np.abs(model.dense_layers_[0].params["W"] - decoder).max())  # W1 = W2^T
    # the objective (mean squared error + penalty) at the regularised optimum, from the spectrum alone:
    # [tail + sum_i lambda'^2 / lambda_i] / D + weight_decay * sum_i (1 - lambda'/lambda_i)
    shrink = WEIGHT_DECAY * D / 2
    full = PCA(D).fit(X).explained_variance_ * (N - 1) / N
    objective_pred = (full[K:].sum() + (shrink ** 2 / full[:K]).sum()) / D + WEIGHT_DECAY * (predicted ** 2).sum()
    objective_rel = abs(float(model.objective(X)) / objective_pred - 1)
    U0, _, _ = np.linalg.svd(decoder_matrix(plain), full_matrices=False)
    plain_mis = sign_free_misalignment(U0.T, pca.components_)
    print(f"{optimizer} seed {seed}: singular vectors 1-|cos| {mis:.2e} (without decay {plain_mis:.2e}), "
          f"singular values {np.round(s, 5)} vs predicted {np.round(predicted, 5)} (max diff {sv_err:.2e}), "
          f"|W1 - W2^T| {asym:.2e}, objective vs prediction {objective_rel:.2e}")
    assert mis < 2e-4  # measured <= 3.7e-5 (adam), <= 7.2e-5 (sgd)
    assert sv_err < 1.5e-3  # measured <= 2.8e-4 (adam), <= 3.4e-4 (sgd)
    assert asym < 1.5e-3  # measured <= 3.3e-4 (adam), <= 4.0e-4 (sgd)
    assert objective_rel < 1e-5  # measured 7e-7 .. 2.7e-6 (second order in the weights' distance to the optimum)
    # Without weight decay the same SVD is an arbitrary basis of the subspace: measured 1-|cos| >= 0.29
    # over 10 data sets (Adam).  That contrast is the point of the theorem.
    assert plain_mis > 0.1


def test_weight_decay_leaves_a_rotation_of_the_code_free(synthetic_runs):
    """Why the theorem is about singular vectors and not the decoder's individual columns: rotating
    the code by any orthogonal O (W1 -> W1 O, W2 -> O^T W2) changes neither the reconstruction nor
    the L2 penalty, so the loss cannot single out the principal directions column by column."""
    X, pca, _ = synthetic_runs[0]
    model = Autoencoder(sizes=[D, K], activation="identity", output_activation="identity", dtype="float64",
                        seed=0, weight_decay=WEIGHT_DECAY)
    before = float(model.objective(X))
    O, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((K, K)))
    enc, dec = model.dense_layers_
    enc.params["W"][...] = enc.params["W"] @ O
    enc.params["b"][...] = enc.params["b"] @ O
    dec.params["W"][...] = O.T @ dec.params["W"]
    after = float(model.objective(X))
    print(f"objective before {before!r}, after an orthogonal rotation of the code {after!r}")
    assert abs(after - before) < 1e-12 * before  # equal up to float64 rounding
