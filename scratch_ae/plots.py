"""Figures: loss curves, image grids, first-layer filters.  All write PNGs headless (Agg).

Each figure is meant to be read without the code: axes name their quantity,
titles say what is shown (and how much of it), and a footnote says what a
number means where that is not obvious.  The figure-building helpers
(`_loss_figure`, `_filters_figure`, `_image_rows_figure`) return the open
matplotlib Figure, so tests can inspect it; the `plot_*` functions save and
close it.
"""
import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .backend import is_device_array  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

FILTER_CMAP = "RdBu_r"  # diverging: white = 0, red = positive weight, blue = negative


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _host(a):
    """A NumPy array from a NumPy or CuPy array (CuPy is never imported here)."""
    if is_device_array(a):
        return a.get()
    return np.asarray(a)


def to_image(row, image_shape):
    """A flat row (D,) -> an array imshow can draw: (H, W) grey or (H, W, 3) colour."""
    img = np.asarray(row).reshape(image_shape)
    if len(image_shape) == 3:  # channel-first (3, H, W) -> (H, W, 3)
        img = np.transpose(img, (1, 2, 0))
    return np.clip(img, 0.0, 1.0)


def per_image_squared_error(reconstructions, targets):
    """Squared error summed over each image's pixels: (n, D) and (n, D) -> NumPy (n,) float64.

    The literature's MNIST unit ("SE per image"); its mean over images is the
    `sse_per_image` of metrics.reconstruction_metrics.
    """
    r = _host(reconstructions).astype(np.float64)
    t = _host(targets).astype(np.float64)
    if r.shape != t.shape:
        raise ValueError(f"per_image_squared_error: reconstructions {r.shape} and targets {t.shape} differ in shape")
    if r.ndim == 1:
        r, t = r[None, :], t[None, :]
    diff = (r - t).reshape(r.shape[0], -1)
    return np.einsum("ij,ij->i", diff, diff)


# ---------------------------------------------------------------------------------------------- loss curves
def _footnote(fig, text, width=95, fontsize=7):
    """Small wrapped text under everything already on the figure (bbox_inches='tight' keeps it)."""
    fig.canvas.draw()  # so the tick labels' extent is known
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    left = min(box.x0 for box in boxes) / fig.bbox.width
    bottom = min(box.y0 for box in boxes) / fig.bbox.height
    fig.text(left, bottom - 0.02, textwrap.fill(text, width), ha="left", va="top", fontsize=fontsize,
             color="0.25", transform=fig.transFigure)


def _loss_figure(history, title="loss", ylabel="loss", test_value=None, test_label="test"):
    """The loss-curve Figure, or None when history has no epochs."""
    train = [float(v) for v in history.get("train_loss", [])]
    if not train:
        return None
    epochs = np.arange(1, len(train) + 1)
    val = [None if v is None else float(v) for v in history.get("val_loss", [])][:len(train)]
    val_epochs = [e for e, v in zip(epochs, val) if v is not None]
    val = [v for v in val if v is not None]

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(epochs, train, "o-", label="train (running mean during the epoch)")
    if val:
        ax.plot(val_epochs, val, "s-", label="validation (end of epoch)")
    if test_value is not None:
        ax.axhline(float(test_value), color="0.3", linestyle=":", linewidth=1.5,
                   label=f"{test_label}: {float(test_value):.4g}")
        ax.plot([epochs[-1]], [float(test_value)], "D", color="0.3")

    values = np.array(train + val + ([float(test_value)] if test_value is not None else []))
    values = values[np.isfinite(values)]
    if values.size and np.all(values > 0) and values.max() / values.min() > 10:
        ax.set_yscale("log")
        # plain numbers (0.05, 0.1, 0.2, ...) rather than powers of ten alone
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, len(train) + 0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

    note = ("Train: the mean of the epoch's batch losses, each taken while the model was still changing "
            "(and including any penalty or input noise).")
    if val:
        note += (" Validation: measured once, on the model at the end of the epoch. That is why epoch 1's "
                 "training loss usually sits above its validation loss.")
    if test_value is not None:
        note += " Dotted line: the final model's loss on the test set."
    _footnote(fig, note)
    return fig


def plot_loss_curves(history, path, title="loss", *, ylabel="loss", test_value=None, test_label="test"):
    """Per-epoch training (and validation) loss against epoch; returns path, or None (nothing written)
    when history has no epochs.

    ylabel : the loss and its unit, e.g. "MSE per pixel" or "BCE per pixel"
    test_value : the final model's test loss, drawn as a dotted line and named in the legend
    The y axis is logarithmic when the plotted values span more than a decade.
    """
    fig = _loss_figure(history, title, ylabel, test_value, test_label)
    if fig is None:
        return None
    return _save(fig, path)


# -------------------------------------------------------------------------------------------------- filters
def _filters_figure(W, image_shape, n=64, title=None, order="auto", total=None, order_note=None):
    W = _host(W)
    if order == "auto":
        # Callers that title the figure have chosen (and ordered) the columns themselves.
        order = "norm" if title is None else None
    if order not in ("norm", None):
        raise ValueError(f"plot_filters: order must be 'norm', None or 'auto', got {order!r}")
    given = W.shape[1]
    n = min(n, given)
    if order == "norm":
        shown = np.argsort(-np.linalg.norm(W, axis=0), kind="stable")[:n]
        how = "largest weight norm first"
    else:
        shown = np.arange(n)
        how = order_note or "in the order given"
    filters = W[:, shown]
    if total is not None:
        info = f"{n} of {total} hidden units, {how}"
    elif title is None:
        info = f"{n} of {given} hidden units, {how}"
    else:  # the caller may have passed a selection: count the columns, not the layer's units
        info = f"{n} of the {given} columns passed, {how}"
    m = float(np.max(np.abs(filters))) if filters.size else 0.0
    m = m if m > 0 and np.isfinite(m) else 1.0
    norm = Normalize(vmin=-m, vmax=m)
    colour = len(image_shape) == 3

    side = int(np.ceil(np.sqrt(n)))
    cell = 0.9 if side > 4 else 1.3
    fig, axes = plt.subplots(side, side, figsize=(side * cell + 1.0, side * cell), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            w = filters[:, k]
            if colour:  # RGB cannot take a colormap: map [-m, m] -> [0, 1] per channel, mid grey = 0
                ax.imshow(to_image((w / m + 1.0) / 2.0, image_shape))
            else:
                ax.imshow(np.asarray(w).reshape(image_shape), cmap=FILTER_CMAP, norm=norm)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap="gray" if colour else FILTER_CMAP)
    bar = fig.colorbar(mappable, ax=axes.ravel().tolist(), fraction=0.04, pad=0.02)
    bar.set_label("weight per colour channel (mid grey = 0)" if colour else "weight (white = 0)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    head = "first-layer filters (columns of W), one colour scale" if title is None else title
    fig.suptitle(f"{head}\n{info}", fontsize=10)
    return fig


def plot_filters(W, image_shape, path, n=64, title=None, *, order="auto", total=None, order_note=None):
    """Columns of the first Dense layer's W (D, H), each drawn as an image, all on one colour scale.

    One symmetric scale [-m, m] (m = the largest |w| among the filters shown), a
    diverging colormap (white = 0) and one colour bar, so filters can be compared.
    order : "norm" shows the n columns with the largest L2 norm first; None keeps
        the given order; "auto" (default) is "norm" unless a title is given -- a
        caller that titles the figure has already chosen and ordered the columns
        (the labs pass W[:, most_active]).
    total : the layer's unit count, for the title's "n of total" (default W.shape[1]).
    order_note : with order=None, how the caller ordered the columns (default "in the order given").
    The title says how many of how many units are shown and in what order; a
    caller's title is kept, with that on a second line.
    """
    return _save(_filters_figure(W, image_shape, n, title, order, total, order_note), path)


# ----------------------------------------------------------------------------------------------- image rows
def _image_rows_figure(rows, labels, image_shape, title=None, errors=None, error_label="SE"):
    rows = [_host(r) for r in rows]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    if errors is not None and len(errors) != n_rows:
        raise ValueError(f"plot_image_rows: errors has {len(errors)} entries for {n_rows} rows")
    errors = [None] * n_rows if errors is None else list(errors)
    with_numbers = any(e is not None for e in errors)
    height = [1.25 if e is not None else 1.1 for e in errors]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * 1.0, sum(height)), squeeze=False,
                             gridspec_kw={"height_ratios": height})
    for r, (row, label, err) in enumerate(zip(rows, labels, errors)):
        if err is not None:
            err = np.ravel(_host(err))
            if len(err) != len(row):
                raise ValueError(f"plot_image_rows: row {r} has {len(row)} images but {len(err)} errors")
            label = f"{label}  ({error_label} under each image)"
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                ax.imshow(to_image(row[c], image_shape), cmap="gray", vmin=0, vmax=1)
                if err is not None:
                    ax.text(0.5, -0.04, f"{err[c]:.1f}", transform=ax.transAxes, ha="center", va="top",
                            fontsize=7)
        axes[r][0].set_title(label, fontsize=8, loc="left")
    if title:
        fig.suptitle(title)
    if with_numbers and error_label == "SE":
        _footnote(fig, "SE: the squared error summed over the image's pixels (pixel values in [0, 1]).",
                  width=int(n_cols * 15))
    return fig


def plot_image_rows(rows, labels, image_shape, path, title=None, *, errors=None, error_label="SE"):
    """Several rows of images (each row a (n, D) array), e.g. originals over reconstructions.

    errors : None, or a list parallel to rows whose entries are None or one number
        per image of that row (e.g. per_image_squared_error(recon, originals)),
        printed in small type under each image.
    error_label : what the numbers are, named in the row's label.
    """
    return _save(_image_rows_figure(rows, labels, image_shape, title, errors, error_label), path)
