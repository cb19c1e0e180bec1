"""Figures: loss curves, image grids, first-layer filters.  All write PNGs headless (Agg)."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def to_image(row, image_shape):
    """A flat row (D,) -> an array imshow can draw: (H, W) grey or (H, W, 3) colour."""
    img = np.asarray(row).reshape(image_shape)
    if len(image_shape) == 3:  # channel-first (3, H, W) -> (H, W, 3)
        img = np.transpose(img, (1, 2, 0))
    return np.clip(img, 0.0, 1.0)


def plot_loss_curves(history, path, title="loss"):
    """Per-epoch training (and validation) loss against epoch."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    ax.plot(epochs, history["train_loss"], "o-", label="train")
    val = [v for v in history.get("val_loss", []) if v is not None]
    if val:
        ax.plot(epochs[:len(val)], val, "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def plot_image_rows(rows, labels, image_shape, path, title=None):
    """Several rows of images (each row a (n, D) array), e.g. originals over reconstructions."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * 1.0, n_rows * 1.1), squeeze=False)
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                ax.imshow(to_image(row[c], image_shape), cmap="gray", vmin=0, vmax=1)
        axes[r][0].set_title(label, fontsize=8, loc="left")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_filters(W, image_shape, path, n=64, title="first-layer filters"):
    """Columns of the first Dense layer's W (D, H), each drawn as an image, each scaled to its own range."""
    W = np.asarray(W)
    n = min(n, W.shape[1])
    side = int(np.ceil(np.sqrt(n)))
    fig, axes = plt.subplots(side, side, figsize=(side * 0.9, side * 0.9), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            w = W[:, k]
            w = (w - w.min()) / (w.max() - w.min() + 1e-12)
            ax.imshow(to_image(w, image_shape), cmap="gray")
    fig.suptitle(title)
    return _save(fig, path)
