"""Convolution and transposed convolution (NCHW, PyTorch's layouts and sizes), by im2col.

Conv2d is one matrix product on the im2col matrix; ConvTranspose2d is the
adjoint of a Conv2d, so its forward is a matrix product then col2im and its
backward is im2col then products: the two layers are the same pieces read
in opposite directions.  These are the algorithms, on `xp` (NumPy or CuPy);
their faster CPU forms are scratch_ae/fast/conv.py, tested against these.

Derivation: derivations/convolution.md
"""
import math

import numpy as np

from .base import Layer
from .im2col import col2im, conv_output_size, conv_transpose_output_size, im2col, pair

INITS = ("pytorch", "he")


def init_conv_weights(shape, n_bias, fan_in, init, rng, dtype=np.float32):
    """Draw a kernel of `shape` and a bias of length n_bias on the host with `rng`.

    "pytorch": PyTorch's default, W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    (kaiming_uniform_ with a = sqrt(5) for W, and the same bound for b);
    "he": W ~ N(0, 2/fan_in) and b = 0, for a layer followed by ReLU.
    The caller passes the fan_in each scheme uses (see the derivation).

    Derivation: derivations/convolution.md#conv-initialisation
    """
    if init == "pytorch":
        bound = 1.0 / math.sqrt(fan_in)
        W = rng.uniform(-bound, bound, shape)
        b = rng.uniform(-bound, bound, n_bias)
    elif init == "he":
        W = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        b = np.zeros(n_bias)
    else:
        raise ValueError(f"unknown init {init!r}; expected one of: {', '.join(INITS)}")
    return W.astype(dtype), b.astype(dtype)


def _positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class _ConvBase(Layer):
    """What Conv2d and ConvTranspose2d share: hyper-parameters, weights, gradient buffers, checks."""

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, init, rng, xp, dtype):
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        self.xp = xp
        rng = np.random.default_rng(0) if rng is None else rng
        W, b = init_conv_weights(self.weight_shape, self.out_channels, self._fan_in(init), init, rng, dtype)
        self.params = {"W": xp.asarray(W), "b": xp.asarray(b)}
        self.grads = {"W": xp.zeros_like(self.params["W"]), "b": xp.zeros_like(self.params["b"])}
        self.training = True

    def _weights(self):
        """The current params["W"], params["b"] (read at every call), checked against the layer's shape."""
        W, b = self.params["W"], self.params["b"]
        if tuple(W.shape) != self.weight_shape or tuple(b.shape) != (self.out_channels,):
            raise ValueError(f"{self!r}: params['W'] has shape {tuple(W.shape)} and params['b'] "
                             f"{tuple(b.shape)}; expected {self.weight_shape} and ({self.out_channels},)")
        return W, b

    def _grad(self, name):
        """The gradient buffer for params[name], reallocated if a new parameter changed its dtype."""
        param, grad = self.params[name], self.grads[name]
        if grad.shape != param.shape or grad.dtype != param.dtype:
            grad = self.grads[name] = self.xp.zeros_like(param)
        return grad

    def checked(self, x):
        """(W, b, output shape) for an input x, after checking the weights' and x's shapes (one line
        naming the layer on a mismatch, or on an input too small for one output pixel)."""
        W, b = self._weights()
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects an input of shape (B, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        out_shape = self.output_shape(x.shape)
        if out_shape[2] < 1 or out_shape[3] < 1:
            raise ValueError(f"{self!r}: input {tuple(x.shape)} gives an empty output {out_shape}")
        return W, b, out_shape

    def _config(self, type_):
        return {"type": type_, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def _repr_args(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


class Conv2d(_ConvBase):
    """out = conv(x, W) + b, PyTorch's Conv2d (a cross-correlation; dilation 1, groups 1).

    out[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, p*sH + i, q*sW + j]

    Shapes: x (B, C_in, H_in, W_in), W (C_out, C_in, kH, kW), b (C_out,),
    out (B, C_out, H_out, W_out) with H_out = floor((H_in + 2 pH - kH) / sH) + 1
    (and the same for widths).  kernel_size, stride, padding: an int or an (h, w) pair.

    Initialisation (on the host, by the seeded numpy Generator `rng`; None ->
    default_rng(0)): init="pytorch" (default) is PyTorch's own default, W and b
    ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C_in kH kW; init="he"
    is He normal, W ~ N(0, 2/fan_in), b = 0.  The arrays are then copied to
    `xp` (numpy or cupy) in `dtype`.

    Cache: the im2col matrix of x, (C_in kH kW, B H_out W_out), which the
    weight gradient needs, and the input's shape.  need_input_grad=False (a
    first layer, whose input is the data) skips the input gradient.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, init="pytorch", rng=None,
                 xp=np, dtype=np.float32, need_input_grad=True):
        self._setup(in_channels, out_channels, kernel_size, stride, padding, init, rng, xp, dtype)
        self.need_input_grad = need_input_grad
        self.cols = None
        self.x_shape = None

    @property
    def weight_shape(self):
        return (self.out_channels, self.in_channels) + self.kernel_size

    def _fan_in(self, init):
        # one output pixel sums C_in kH kW products, and that is also PyTorch's fan_in
        return self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    def output_shape(self, x_shape):
        """(B, C_out, H_out, W_out) for an input of shape (B, C_in, H_in, W_in)."""
        B, _, H_in, W_in = x_shape
        (kH, kW), (sH, sW), (pH, pW) = self.kernel_size, self.stride, self.padding
        return (B, self.out_channels, conv_output_size(H_in, kH, sH, pH), conv_output_size(W_in, kW, sW, pW))

    def forward(self, x):
        """x (B, C_in, H_in, W_in) -> out (B, C_out, H_out, W_out): Z = W_mat cols, one matrix product.

        Derivation: derivations/convolution.md#conv-im2col
        """
        xp = self.xp
        W, b, (B, C_out, H_out, W_out) = self.checked(x)
        cols = im2col(x, self.kernel_size, self.stride, self.padding, xp)  # (C_in kH kW, B H_out W_out)
        Z = W.reshape(C_out, -1) @ cols                                  # (C_out, B H_out W_out)
        self.cols, self.x_shape = cols, x.shape
        # Z's columns run (n, p, q): one pass both moves C_out behind B (NCHW) and adds the bias.
        out = xp.empty((B, C_out, H_out, W_out), dtype=Z.dtype)
        xp.add(Z.reshape(C_out, B, H_out, W_out).transpose(1, 0, 2, 3), b.reshape(1, C_out, 1, 1), out=out)
        return out

    def backward(self, grad_out):
        """grad_out = dL/d(out), (B, C_out, H_out, W_out). Returns dL/dx, (B, C_in, H_in, W_in), or None.

        With G_mat = grad_out as (C_out, B H_out W_out): grad_W = G_mat cols^T
        (reshaped to W's shape), grad_b = row sums of G_mat, and
        dL/dx = col2im(W_mat^T G_mat).

        Derivation: derivations/convolution.md#conv-backward
        """
        xp = self.xp
        W, _ = self._weights()
        C_out = self.out_channels
        G_mat = grad_out.transpose(1, 0, 2, 3).reshape(C_out, -1)  # (C_out, B H_out W_out), columns (n, p, q)
        xp.matmul(G_mat, self.cols.T, out=self._grad("W").reshape(C_out, -1))
        xp.sum(G_mat, axis=1, out=self._grad("b"))
        if not self.need_input_grad:
            return None
        d_cols = W.reshape(C_out, -1).T @ G_mat                     # (C_in kH kW, B H_out W_out)
        return col2im(d_cols, self.x_shape, self.kernel_size, self.stride, self.padding, xp)

    def config(self):
        return self._config("conv2d")

    def __repr__(self):
        return f"Conv2d({self._repr_args()})"


class ConvTranspose2d(_ConvBase):
    """out = conv_transpose(y, W) + b, PyTorch's ConvTranspose2d (dilation 1, groups 1).

    The adjoint of the Conv2d from C_out to C_in channels with the same W: each
    input pixel adds its kernel, scaled, onto the output at stride s:
    out[n, o, u, v] = b[o] + sum over c, (p, i), (q, j) with p*sH + i - pH = u and
    q*sW + j - pW = v of y[n, c, p, q] W[c, o, i, j].

    Shapes: y (B, C_in, H_in, W_in), W (C_in, C_out, kH, kW), b (C_out,),
    out (B, C_out, H_out, W_out) with
    H_out = (H_in - 1) sH - 2 pH + kH + output_padding_h (and the same for widths).
    output_padding (< stride in each dimension) picks among the output sizes
    that a stride-s convolution maps back to H_in.

    Initialisation (host, seeded `rng`; None -> default_rng(0)):
    init="pytorch" (default) is PyTorch's, W and b ~ U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) with PyTorch's fan_in = C_out kH kW (W's second dimension);
    init="he" is He normal with the number of terms one output pixel sums,
    fan_in = C_in kH kW / (sH sW), and b = 0.

    Cache: y as the matrix Y_mat (C_in, B H_in W_in), which the weight
    gradient needs, and y's shape.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, *,
                 init="pytorch", rng=None, xp=np, dtype=np.float32):
        self.output_padding = pair(output_padding, "output_padding", minimum=0)
        stride_pair = pair(stride, "stride", minimum=1)
        if any(a >= s for a, s in zip(self.output_padding, stride_pair)):
            raise ValueError(f"output_padding {output_padding!r} must be smaller than the stride {stride!r} "
                             f"in each dimension")
        self._setup(in_channels, out_channels, kernel_size, stride, padding, init, rng, xp, dtype)
        self.Y_mat = None
        self.y_shape = None

    @property
    def weight_shape(self):
        return (self.in_channels, self.out_channels) + self.kernel_size

    def _fan_in(self, init):
        (kH, kW), (sH, sW) = self.kernel_size, self.stride
        if init == "pytorch":
            return self.out_channels * kH * kW  # PyTorch reads fan_in off W's second dimension, C_out
        # an output pixel sums, on average, C_in (kH / sH) (kW / sW) products: the He variance wants that count
        return self.in_channels * kH * kW / (sH * sW)

    def output_shape(self, y_shape):
        """(B, C_out, H_out, W_out) for an input of shape (B, C_in, H_in, W_in)."""
        B, _, H_in, W_in = y_shape
        (kH, kW), (sH, sW), (pH, pW), (aH, aW) = self.kernel_size, self.stride, self.padding, self.output_padding
        return (B, self.out_channels, conv_transpose_output_size(H_in, kH, sH, pH, aH),
                conv_transpose_output_size(W_in, kW, sW, pW, aW))

    def forward(self, y):
        """y (B, C_in, H_in, W_in) -> out (B, C_out, H_out, W_out): cols = W_mat^T Y_mat, then col2im.

        Derivation: derivations/convolution.md#conv-transpose
        """
        xp = self.xp
        W, b, out_shape = self.checked(y)
        C_in = self.in_channels
        Y_mat = y.transpose(1, 0, 2, 3).reshape(C_in, -1)   # (C_in, B H_in W_in), columns (n, p, q)
        cols = W.reshape(C_in, -1).T @ Y_mat                # (C_out kH kW, B H_in W_in)
        out = col2im(cols, out_shape, self.kernel_size, self.stride, self.padding, xp)
        out += b.reshape(1, self.out_channels, 1, 1)
        self.Y_mat, self.y_shape = Y_mat, y.shape
        return out

    def backward(self, grad_out):
        """grad_out = dL/d(out), (B, C_out, H_out, W_out). Returns dL/dy, (B, C_in, H_in, W_in).

        G_cols = im2col(grad_out), (C_out kH kW, B H_in W_in); grad_W = Y_mat G_cols^T
        (reshaped to W's shape), grad_b = grad_out summed over n, u, v, and
        dL/dy = W_mat G_cols: the Conv2d forward of grad_out with the same W.

        Derivation: derivations/convolution.md#conv-transpose
        """
        xp = self.xp
        W, _ = self._weights()
        C_in = self.in_channels
        G_cols = im2col(grad_out, self.kernel_size, self.stride, self.padding, xp)  # (C_out kH kW, B H_in W_in)
        xp.matmul(self.Y_mat, G_cols.T, out=self._grad("W").reshape(C_in, -1))
        xp.sum(grad_out, axis=(0, 2, 3), out=self._grad("b"))
        dY = W.reshape(C_in, -1) @ G_cols                                          # (C_in, B H_in W_in)
        B, _, H_in, W_in = self.y_shape
        return xp.ascontiguousarray(dY.reshape(C_in, B, H_in, W_in).transpose(1, 0, 2, 3))

    def config(self):
        return dict(self._config("conv_transpose2d"), output_padding=list(self.output_padding))

    def __repr__(self):
        return f"ConvTranspose2d({self._repr_args()}, output_padding={self.output_padding})"
