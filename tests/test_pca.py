"""scratch_ae.pca.PCA against scikit-learn, the Eckart-Young identities, and MNIST's 13.87.

Tolerances are measured values times a modest factor (each comment gives the measurement).
"""
import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.exceptions import NotFittedError

from scratch_ae.backend import cupy_unavailable_reason
from scratch_ae.pca import PCA, principal_angles


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One BLAS thread: LAPACK's SVD on these small matrices is faster so, and a 2-thread OpenBLAS
    slows down ~40x when other processes share the 2 cores (measured 0.2 s vs 8 s per fit)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def random_data(n=300, d=40, seed=0):
    """n x d data with a decaying spectrum (3 .. 0.1 standard deviations), rotated and offset."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (rng.standard_normal((n, d)) * np.linspace(3, 0.1, d)) @ rotation + 2.0


@pytest.fixture(scope="module")
def mnist_train():
    from scratch_ae.data import load_dataset
    return load_dataset("mnist", "train").images


@pytest.fixture(scope="module")
def datasets(mnist_train):
    return {"random": random_data(), "mnist": mnist_train[:1000]}


# measured maxima over both data sets, k in (5, 30) and both methods:
TOLERANCES = {
    # components |1 - |cos||, explained variance (ratio) relative error, reconstruction error relative error
    "float64": {"components": 1e-12, "variance": 1e-12, "error": 1e-12},  # measured 2.4e-15, 6.0e-15, 0
    "float32": {"components": 1e-7, "variance": 3e-6, "error": 1e-7},  # measured 1.7e-8, 6.0e-7, 1.8e-8
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ["svd", "eigh"])
@pytest.mark.parametrize("k", [5, 30])
@pytest.mark.parametrize("data", ["random", "mnist"])
def test_pca_agrees_with_scikit_learn(datasets, data, k, method, dtype):
    X = datasets[data]
    ours = PCA(k, method=method, dtype=dtype).fit(X)
    ref = SklearnPCA(k, svd_solver="full").fit(X.astype(np.float64))
    ref_error = float(((ref.inverse_transform(ref.transform(X.astype(np.float64))) - X) ** 2).sum(axis=1).mean())
    tol = TOLERANCES[dtype]
    cos = np.abs((ours.components_ * ref.components_).sum(axis=1))  # rows are unit vectors: up to sign
    assert ours.components_.shape == (k, X.shape[1])
    assert np.abs(cos - 1).max() < tol["components"]
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=tol["variance"])
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=tol["variance"])
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=0, atol=1e-12)
    assert abs(ours.reconstruction_error(X) / ref_error - 1) < tol["error"]
    # codes agree up to each component's sign
    signs = np.sign((ours.components_ * ref.components_).sum(axis=1))
    np.testing.assert_allclose(ours.transform(X) * signs, ref.transform(X.astype(np.float64)),
                               atol=1e-9 if dtype == "float64" else 2e-4)


def test_components_are_orthonormal_ordered_and_sign_fixed(datasets):
    X = datasets["mnist"]
    pca = PCA(30).fit(X)
    np.testing.assert_allclose(pca.components_ @ pca.components_.T, np.eye(30), atol=1e-12)
    assert np.all(np.diff(pca.explained_variance_) <= 0)
    rows = np.arange(30)
    assert np.all(pca.components_[rows, np.abs(pca.components_).argmax(axis=1)] > 0)
    # the codes are uncorrelated, with the explained variances as their variances
    codes = pca.transform(X)
    np.testing.assert_allclose(np.cov(codes, rowvar=False), np.diag(pca.explained_variance_), atol=1e-10)


def test_svd_and_eigh_give_the_same_fit(datasets):
    X = datasets["mnist"]
    a, b = PCA(30, method="svd").fit(X), PCA(30, method="eigh").fit(X)
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-10)  # same sign convention
    np.testing.assert_allclose(a.explained_variance_, b.explained_variance_, rtol=1e-12)


def test_training_error_is_the_sum_of_the_discarded_eigenvalues(datasets):
    """Eckart-Young on the training data: SSE per image = (N-1)/N * sum_{i>k} lambda_i."""
    X = datasets["mnist"]
    n = X.shape[0]
    spectrum = PCA(None).fit(X).explained_variance_
    for k in (1, 5, 30, 200):
        expected = (n - 1) / n * spectrum[k:].sum()
        assert abs(PCA(k).fit(X).reconstruction_error(X) / expected - 1) < 1e-10  # measured < 1e-13


def test_no_other_rank_k_affine_reconstruction_does_better(datasets):
    """Eckart-Young: random subspaces, a perturbed principal subspace and the uncentred SVD all lose."""
    X = datasets["mnist"].astype(np.float64)
    k = 10
    pca = PCA(k).fit(X)
    best = pca.reconstruction_error(X)
    mean = X.mean(axis=0)
    rng = np.random.default_rng(0)

    def error_of_basis(V, offset):  # V (D, k) orthonormal: x -> offset + (x - offset) V V^T
        Xc = X - offset
        return float(((Xc @ V @ V.T - Xc) ** 2).sum(axis=1).mean())

    candidates = {"random": np.linalg.qr(rng.standard_normal((784, k)))[0],
                  "perturbed": np.linalg.qr(pca.components_.T + 0.01 * rng.standard_normal((784, k)))[0]}
    for name, V in candidates.items():
        assert error_of_basis(V, mean) > best, name
    _, _, vt = np.linalg.svd(X, full_matrices=False)  # no centring: the best *linear* rank-k map
    assert error_of_basis(vt[:k].T, 0.0) > best
    assert abs(error_of_basis(pca.components_.T, mean) / best - 1) < 1e-12


def test_mnist_30_components_test_error_is_13_87(mnist_train):
    """Fitted on all 60,000 training images, 30 components reconstruct the 10,000 test images with
    13.866 squared error per image (Hinton & Salakhutdinov, Science 2006, report 13.87)."""
    from scratch_ae.data import load_dataset
    test = load_dataset("mnist", "test").images
    pca = PCA(30, method="eigh").fit(mnist_train)  # ~2 s on 2 cores
    error = pca.reconstruction_error(test)
    print(f"PCA-30 on MNIST: test {error:.4f}, train {pca.reconstruction_error(mnist_train):.4f} SSE per image")
    assert abs(error - 13.866) < 0.01  # measured 13.86627 (float64 and float32)
    assert pca.score(test) == -error


def test_float32_fit_matches_float64(datasets):
    X = datasets["mnist"]
    a, b = PCA(30, dtype="float32").fit(X), PCA(30, dtype="float64").fit(X)
    assert np.abs(np.abs((a.components_ * b.components_).sum(axis=1)) - 1).max() < 1e-6  # measured ~1e-8
    assert abs(a.reconstruction_error(X) / b.reconstruction_error(X) - 1) < 1e-6
    assert a.transform(X).dtype == np.float32 and b.transform(X).dtype == np.float64


def test_transform_inverse_transform_shapes_and_round_trip(datasets):
    X = datasets["random"]
    pca = PCA(7).fit(X)
    codes = pca.transform(X)
    assert codes.shape == (300, 7)
    recon = pca.inverse_transform(codes)
    assert recon.shape == X.shape
    np.testing.assert_allclose(recon, pca.reconstruct(X), atol=1e-12)
    # a point already in the affine subspace is reconstructed exactly
    inside = pca.inverse_transform(codes[:5])
    np.testing.assert_allclose(pca.reconstruct(inside), inside, atol=1e-12)
    assert pca.score(X) == -pca.reconstruction_error(X)
    full = PCA(None).fit(X)
    assert full.n_components_ == 40
    np.testing.assert_allclose(full.reconstruct(X), X, atol=1e-10)
    assert abs(full.explained_variance_ratio_.sum() - 1) < 1e-12
    # small batches give the same answer as one block
    np.testing.assert_allclose(PCA(7, batch_size=7).fit(X).transform(X), codes, atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_components": 0}, "n_components"), ({"n_components": 41}, "n_components"),
    ({"n_components": 2.5}, "n_components"), ({"n_components": True}, "n_components"),
    ({"n_components": 3, "method": "qr"}, "method"), ({"n_components": 3, "dtype": "float16"}, "dtype"),
    ({"n_components": 3, "batch_size": 0}, "batch_size"),
])
def test_bad_parameters_raise_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PCA(**kwargs).fit(random_data())


def test_bad_inputs_raise():
    with pytest.raises(NotFittedError):
        PCA(3).transform(random_data())
    with pytest.raises(ValueError, match="2-D"):
        PCA(3).fit(np.zeros(10))
    X = random_data()
    pca = PCA(3).fit(X)
    with pytest.raises(ValueError, match=r"\(n_samples, 40\)"):
        pca.transform(X[:, :10])
    with pytest.raises(ValueError, match=r"\(n_samples, 3\)"):
        pca.inverse_transform(np.zeros((2, 4)))
    X = X.copy()
    X[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PCA(3).fit(X)


def test_principal_angles_agree_with_scipy():
    rng = np.random.default_rng(0)
    for p, q in [(3, 3), (2, 5), (6, 4)]:
        A, B = rng.standard_normal((30, p)), rng.standard_normal((30, q))
        np.testing.assert_allclose(principal_angles(A, B), np.sort(subspace_angles(A, B)), atol=1e-10)
    A = rng.standard_normal((30, 4))
    mix = rng.standard_normal((4, 4))  # any basis of the same subspace
    assert principal_angles(A, A @ mix).max() < 1e-7  # arccos resolves angles down to ~1e-8
    e = np.eye(30)
    np.testing.assert_allclose(principal_angles(e[:, :3], e[:, 3:6]), np.full(3, np.pi / 2), atol=1e-12)


GPU_REASON = cupy_unavailable_reason()


@pytest.mark.gpu
@pytest.mark.skipif(GPU_REASON is not None, reason=f"needs CuPy and a CUDA GPU: {GPU_REASON}")
@pytest.mark.parametrize("method", ["svd", "eigh"])
def test_cupy_fit_matches_numpy(datasets, method):
    import cupy
    X = datasets["mnist"]
    cpu = PCA(30, method=method).fit(X)
    gpu = PCA(30, method=method, backend="cupy").fit(cupy.asarray(X))
    assert np.abs(np.abs((cpu.components_ * gpu.components_).sum(axis=1)) - 1).max() < 1e-9
    np.testing.assert_allclose(gpu.explained_variance_, cpu.explained_variance_, rtol=1e-9)
    assert abs(gpu.reconstruction_error(X) / cpu.reconstruction_error(X) - 1) < 1e-9
    assert isinstance(gpu.transform(cupy.asarray(X)), np.ndarray)


def test_truncate_equals_a_fit_with_fewer_components(datasets):
    X = datasets["mnist"]
    big = PCA(30).fit(X)
    small, direct = big.truncate(7), PCA(7).fit(X)
    np.testing.assert_allclose(small.components_, direct.components_, atol=1e-10)
    np.testing.assert_allclose(small.explained_variance_ratio_, direct.explained_variance_ratio_, rtol=1e-12)
    assert abs(small.reconstruction_error(X) / direct.reconstruction_error(X) - 1) < 1e-10
    assert small.transform(X).shape == (1000, 7) and big.n_components_ == 30
    with pytest.raises(ValueError, match="k must be"):
        big.truncate(31)
