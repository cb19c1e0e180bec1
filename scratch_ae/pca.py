"""Principal component analysis in closed form, and the tools that compare it with linear autoencoders.

`PCA` fits on the array backend (`xp` is NumPy or CuPy), by the SVD of the
centred data or by `eigh` of the D x D covariance.  The helpers below it measure
what the derivation proves about linear autoencoders: principal angles between
subspaces, the ordered components recovered from a trained linear autoencoder,
and the decoder a weight-decayed linear autoencoder converges to.

Shapes follow the rest of scratch_ae: data X (N, D) with one image per row,
components_ (k, D) with one principal direction per row, codes (N, k).

Derivation: derivations/pca-and-linear-autoencoders.md
"""
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .backend import backend_of, check_array_backend, get_backend

METHODS = ("svd", "eigh")


class PCA(TransformerMixin, BaseEstimator):
    """Rank-k PCA: the best rank-k affine reconstruction of the data (Eckart-Young).

    n_components : k, the number of components kept (1 <= k <= min(N, D)); None keeps min(N, D).
    backend : "numpy" or "cupy"; the fit and the transforms run there.
    method : "svd" (thin SVD of the centred data, N x D) or "eigh" (eigendecomposition of the
        D x D covariance; much faster when N >> D, e.g. all of MNIST).
    dtype : the arithmetic precision, "float64" (default) or "float32".
    batch_size : rows per block when accumulating the covariance and in the transforms.

    Fitted attributes (host NumPy arrays, float64 whatever `dtype`):
    components_ (k, D) orthonormal rows, ordered by decreasing variance, sign fixed so that
        each row's largest-magnitude entry is positive;
    explained_variance_ (k,) the variance along each component (divisor N - 1, like scikit-learn);
    explained_variance_ratio_ (k,) that over the total variance;
    mean_ (D,); n_components_, n_features_in_, n_samples_.

    `score(X)` is minus `reconstruction_error(X)`, the same convention as
    `Autoencoder.score` (not scikit-learn PCA's log-likelihood), so the two can be
    compared and swapped in a grid search.
    """

    def __init__(self, n_components=None, backend="numpy", method="eigh", dtype="float64", batch_size=8192):
        self.n_components = n_components
        self.backend = backend
        self.method = method
        self.dtype = dtype
        self.batch_size = batch_size

    # ------------------------------------------------------------------ fitting
    def _check_params(self, n, d):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of: {', '.join(METHODS)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not (isinstance(self.batch_size, (int, np.integer)) and self.batch_size > 0):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        k = min(n, d) if self.n_components is None else self.n_components
        if not (isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 1 <= k <= min(n, d)):
            raise ValueError(f"n_components must be an integer in [1, min(n_samples, n_features)] = [1, {min(n, d)}], "
                             f"got {self.n_components!r}")
        return int(k)

    def _as_data(self, X, what="X", width=None):
        """X as a 2-D array on the backend in `dtype` (a host copy is never made of a CuPy array)."""
        xp = self.backend_.xp
        check_array_backend(X, self.backend_, what)
        if backend_of(X).name == "numpy":
            X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{what} must be a 2-D array (n_samples, n_features), got shape {tuple(X.shape)}")
        if width is not None and X.shape[1] != width:
            raise ValueError(f"{what} must have shape (n_samples, {width}), got {tuple(X.shape)}")
        return X, xp

    def fit(self, X, y=None):
        """Fit the mean and the top-k principal directions of X (N, D); returns self.

        svd:  Xc = X - mean = U S V^T (thin), components = the first k rows of V^T,
              variances S^2 / (N - 1).
        eigh: C = Xc^T Xc / (N - 1) = V diag(lambda) V^T, accumulated over row blocks so
              the centred copy of X is never held at once; components = the eigenvectors of
              the k largest eigenvalues, variances those eigenvalues.

        Derivation: derivations/pca-and-linear-autoencoders.md#pca-closed-form
        """
        self.backend_ = get_backend(self.backend)
        X, xp = self._as_data(X)
        n, d = X.shape
        k = self._check_params(n, d)
        if n < 2:
            raise ValueError("PCA needs at least 2 samples")
        dtype = np.dtype(self.dtype)
        bs = self.batch_size
        mean = xp.zeros(d, dtype=np.float64)
        for i in range(0, n, bs):
            mean += xp.asarray(X[i:i + bs], dtype=np.float64).sum(axis=0)
        mean /= n
        if not bool(xp.isfinite(mean).all()):
            raise ValueError("X contains NaN or inf")
        mean_d = mean.astype(dtype)
        if self.method == "svd":
            Xc = xp.asarray(X, dtype=dtype) - mean_d
            _, s, vt = xp.linalg.svd(Xc, full_matrices=False)
            variances = (s.astype(np.float64) ** 2) / (n - 1)
            components = vt[:k]
        else:
            cov = xp.zeros((d, d), dtype=dtype)
            for i in range(0, n, bs):
                block = xp.asarray(X[i:i + bs], dtype=dtype) - mean_d
                cov += block.T @ block
            cov /= (n - 1)
            evals, evecs = xp.linalg.eigh(cov)  # ascending
            variances = xp.maximum(evals[::-1].astype(np.float64), 0.0)
            components = evecs[:, ::-1][:, :k].T
        components = _fix_signs(components, xp)
        total = float(variances.sum())
        variances = self.backend_.to_numpy(variances)
        self.n_samples_, self.n_features_in_, self.n_components_ = n, d, k
        self.mean_ = self.backend_.to_numpy(mean)
        self.components_ = self.backend_.to_numpy(components).astype(np.float64)
        self.explained_variance_ = variances[:k].copy()
        self.explained_variance_ratio_ = self.explained_variance_ / total if total > 0 else np.zeros(k)
        # working copies on the backend, in the arithmetic dtype
        self._mean_xp = xp.asarray(self.mean_, dtype=dtype)
        self._components_xp = xp.asarray(self.components_, dtype=dtype)
        return self

    def truncate(self, k):
        """A fitted copy keeping the first k components: PCA(k).fit(X) without refitting
        (the components are nested, so one fit serves a whole curve of code sizes)."""
        self._check_fitted()
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= self.n_components_):
            raise ValueError(f"k must be an integer in [1, {self.n_components_}], got {k!r}")
        new = self.__class__(**{**self.get_params(), "n_components": int(k)})
        new.backend_ = self.backend_
        new.n_samples_, new.n_features_in_, new.n_components_ = self.n_samples_, self.n_features_in_, int(k)
        new.mean_, new.components_ = self.mean_, self.components_[:k].copy()
        new.explained_variance_ = self.explained_variance_[:k].copy()
        new.explained_variance_ratio_ = self.explained_variance_ratio_[:k].copy()
        new._mean_xp, new._components_xp = self._mean_xp, self._components_xp[:k].copy()
        return new

    # ------------------------------------------------------------------ transforms
    def _check_fitted(self):
        if not hasattr(self, "components_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError("this PCA is not fitted yet; call fit(X) first")

    def _blocks(self, fn, X, width, out_width):
        X, xp = self._as_data(X, width=width)
        parts = [self.backend_.to_numpy(fn(xp.asarray(X[i:i + self.batch_size], dtype=self.dtype)))
                 for i in range(0, X.shape[0], self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, out_width), dtype=self.dtype)

    def transform(self, X):
        """X (N, D) -> codes Z = (X - mean) V_k^T, (N, k), a NumPy array.

        Derivation: derivations/pca-and-linear-autoencoders.md#pca-projection
        """
        self._check_fitted()
        return self._blocks(lambda x: (x - self._mean_xp) @ self._components_xp.T,
                            X, self.n_features_in_, self.n_components_)

    def inverse_transform(self, Z):
        """codes Z (N, k) -> reconstructions Z V_k + mean, (N, D), a NumPy array.

        Derivation: derivations/pca-and-linear-autoencoders.md#pca-projection
        """
        self._check_fitted()
        return self._blocks(lambda z: z @ self._components_xp + self._mean_xp,
                            Z, self.n_components_, self.n_features_in_)

    def reconstruct(self, X):
        """X (N, D) -> its projection onto the affine principal subspace, (N, D), a NumPy array."""
        self._check_fitted()
        return self._blocks(self._reconstruct_xp, X, self.n_features_in_, self.n_features_in_)

    def _reconstruct_xp(self, x):
        xc = x - self._mean_xp
        return (xc @ self._components_xp.T) @ self._components_xp + self._mean_xp

    def reconstruction_error(self, X):
        """Mean over the images of X (N, D) of the squared error summed over pixels.

        On the training data this is (N - 1)/N times the sum of the discarded eigenvalues,
        the Eckart-Young minimum over every rank-k affine reconstruction.

        Derivation: derivations/pca-and-linear-autoencoders.md#eckart-young
        """
        self._check_fitted()
        X, xp = self._as_data(X, width=self.n_features_in_)
        if X.shape[0] == 0:
            raise ValueError("X is empty")
        total = xp.zeros((), dtype=np.float64)
        for i in range(0, X.shape[0], self.batch_size):
            x = xp.asarray(X[i:i + self.batch_size], dtype=self.dtype)
            diff = self._reconstruct_xp(x) - x
            total += (diff * diff).sum(dtype=np.float64)
        return float(total) / X.shape[0]

    def score(self, X, y=None):
        """Minus `reconstruction_error(X)`: higher is better (as `Autoencoder.score`)."""
        return -self.reconstruction_error(X)


def _fix_signs(components, xp):
    """Flip each row (k, D) so that its largest-magnitude entry is positive (a deterministic sign)."""
    idx = xp.argmax(xp.abs(components), axis=1)
    signs = xp.sign(components[xp.arange(components.shape[0]), idx])
    signs = xp.where(signs == 0, 1, signs)
    return components * signs[:, None]


# ---------------------------------------------------------------------- subspaces
def orthonormal_basis(A):
    """An orthonormal basis (D, r) of the column space of A (D, r), by a thin QR; host float64."""
    q, _ = np.linalg.qr(np.asarray(A, dtype=np.float64))
    return q


def principal_angles(A, B):
    """Principal angles (radians, ascending) between the column spaces of A (D, p) and B (D, q).

    With orthonormal bases Q_A, Q_B, the singular values of Q_A^T Q_B are the cosines of
    the angles; the largest angle is the one that says whether the subspaces are equal.
    Agrees with scipy.linalg.subspace_angles (which is accurate for tiny angles too: here
    the small angles come from arccos and are exact only down to about 1e-8 rad).

    Derivation: derivations/pca-and-linear-autoencoders.md#principal-angles
    """
    qa, qb = orthonormal_basis(A), orthonormal_basis(B)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.sort(np.arccos(np.clip(cosines, -1.0, 1.0)))


def decoder_matrix(model):
    """The decoder of a one-layer linear Autoencoder as a (D, k) host matrix: its columns span the
    reconstructions' subspace (the model stores it as W (k, D), reconstruction = code @ W + b)."""
    dense = model.dense_layers_[-1]
    W = dense.params["W"] if "W" in dense.params else dense.source.params["W"].T
    return model.backend_.to_numpy(W).astype(np.float64).T


def components_from_linear_autoencoder(model, X):
    """The ordered principal components (k, D) and variances (k,) recovered from a trained linear AE.

    The decoder only fixes the subspace (any invertible k x k matrix can be moved between
    encoder and decoder).  Take an orthonormal basis Q (D, k) of the decoder's columns,
    project the centred data onto it, P = Xc Q (N, k), eigendecompose the small covariance
    P^T P / (N - 1) = R diag(mu) R^T and rotate: the rows of (Q R)^T, by decreasing mu, are
    the principal directions in that subspace (sign fixed as in `PCA`), mu their variances.

    Derivation: derivations/pca-and-linear-autoencoders.md#recovering-components
    """
    Q = orthonormal_basis(decoder_matrix(model))
    X = np.asarray(X, dtype=np.float64)
    P = (X - X.mean(axis=0)) @ Q
    mu, R = np.linalg.eigh(P.T @ P / (X.shape[0] - 1))
    order = np.argsort(mu)[::-1]
    components = (Q @ R[:, order]).T
    return _fix_signs(components, np), mu[order]


def weight_decay_decoder(eigenvalues, weight_decay, n_features):
    """Predicted singular values of the decoder of an L2-regularised linear autoencoder.

    The model's objective is (1/(B D)) sum ||x - x_hat||^2 + (weight_decay / 2)(||W1||^2 + ||W2||^2);
    times D it is the Kunin et al. form with lambda' = weight_decay * D / 2, whose minimum has
    W1 = W2^T and decoder singular values sigma_i = sqrt(1 - lambda'/lambda_i) (0 when
    lambda_i <= lambda'), lambda_i the covariance eigenvalues (divisor N).

    Derivation: derivations/pca-and-linear-autoencoders.md#weight-decay
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    shrink = weight_decay * n_features / 2.0
    return np.sqrt(np.clip(1.0 - shrink / lam, 0.0, None))
