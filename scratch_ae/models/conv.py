"""Convolutional autoencoders: conv blocks down, transposed convolutions and/or unpooling back up.

Two encoders, picked by `downsample`:

* "pool": per stage Conv2d(k, stride 1, 'same' padding) + activation + MaxPool2d(2);
  channels (16, 8) on 1x28x28 MNIST give 28 -> 14 -> 7, a code of 8x7x7 maps.
* "stride": per stage Conv2d(k, stride 2, padding k//2) + activation; channels
  (128, 64, 32, 16) on 3x28x28 give 28 -> 14 -> 7 -> 4 -> 2 (the four-layer stride-2 network).

Three decoders, picked by `decoder` (each stage undoes one encoder stage):

* "deconv": ConvTranspose2d(k, stride 2), padding and output padding chosen so each stage
  restores the encoder's size exactly (learned upsampling; the only choice for "stride");
* "deconv+unpool": MaxUnpool2d through the matching encoder pool's argmax, then
  ConvTranspose2d(k, stride 1, 'same' padding);
* "unpool": MaxUnpool2d, then an ordinary Conv2d(k, stride 1, 'same' padding): unpooling
  is the only way up and the decoder holds no transposed convolution.

The three names say which of the two upsampling tools a decoder uses, as the report's
decoders do.  A stride-1 transposed convolution is a convolution with its kernel flipped
and its channel axes swapped (derivations/convolution.md#conv-transpose), so "deconv+unpool"
and "unpool" can represent the same functions; they differ in their layer, their weight
layout and (PyTorch's fan-in initialisation reads different fans) their starting point.
Some convolution after each unpooling is needed: an unpooled map is zero everywhere but
at the argmax pixels, and a decoder that only mixes channels there (a 1x1 kernel) cannot
draw a stroke wider than those pixels (benchmarks/RESULTS.md#2026-12-02-lab-conv-full).

With `dense_code=K` the code is a vector instead of maps: a Dense layer after the encoder's
Flatten maps the C*H*W maps to K values (linear: no activation, as in PCA, which is the
yardstick at that size), and the decoder starts with a Dense back to C*H*W and the hidden
activation before its Reshape.  This is how a pooled network gets a small code without
shrinking its last conv stage to a few channels (benchmarks/RESULTS.md#2026-12-02-small-code-dense).

The unpooling decoders read where each pool's maximum was, so their code is the pooled
maps *and* the argmax positions (`code_size` counts both; `transform` returns both,
maps first, the argmax window indices after them as numbers, so `inverse_transform`
can decode a code on its own).  The public boundary is flat (n_samples, C*H*W): the
encoder starts with a Reshape and ends with a Flatten, the decoder the other way round.

Parameters are named by position: "encoder.<i>.W", "decoder.<j>.b", with i, j the layer's
index in its Sequential; `layer_description()` lists every layer's type and
hyper-parameters (an unpool also names the pool it reads), enough to rebuild the
network in another framework from the checkpoint's JSON alone.
"""
import numpy as np

from ..layers import Conv2d, ConvTranspose2d, Dense, Dropout, Flatten, MaxPool2d, MaxUnpool2d, Reshape, activation_name, make_activation
from ..layers.conv import init_conv_weights
from ..layers.im2col import conv_output_size, conv_transpose_output_size
from ..losses import make_loss
from ..penalties import L1ActivityPenalty, L2WeightDecay
from ..sequential import Sequential
from .base import AutoencoderBase

DECODERS = ("deconv+unpool", "unpool", "deconv")
DOWNSAMPLING = ("pool", "stride")


def _transpose_padding(size_in, size_out, kernel, stride):
    """(padding, output_padding) for a ConvTranspose2d taking size_in to exactly size_out."""
    for padding in (kernel // 2, 0, *range(1, kernel)):
        for output_padding in range(stride):
            if conv_transpose_output_size(size_in, kernel, stride, padding, output_padding) == size_out:
                return padding, output_padding
    raise ValueError(f"no transposed convolution with kernel {kernel} and stride {stride} takes {size_in} to {size_out}")


class ConvAutoencoder(AutoencoderBase):
    """A convolutional autoencoder with hand-written forward and backward passes (NCHW).

    input_shape : (C, H, W) of one image; X is flat (n_samples, C*H*W).
    channels : output channels of each encoder stage, e.g. (16, 8) or (128, 64, 32, 16).
    kernel_size : odd kernel size of every convolution.
    downsample : "pool" (conv + max-pool stages) or "stride" (stride-2 convolutions).
    decoder : "deconv+unpool", "unpool" or "deconv" (see the module docstring).
    dense_code : None (the code is the last stage's maps) or K, a linear Dense code of K values between
        the encoder's maps and the decoder (see the module docstring).
    activation, output_activation, loss : as for `Autoencoder` ("bce" needs a sigmoid output); the output is a
        sigmoid by default (images in [0, 1]; a ReLU output can start dead and never recover).
    weight_decay, l1 : L2 on every W (decoupled with optimizer="adamw"); L1 on the code maps.
    dropout : drop probability of inverted dropout after every hidden activation (0: none).
    init : "pytorch" (PyTorch's default uniform initialisation, so runs compare with it) or "he".
    optimizer, lr, epochs, batch_size, noise, patience, backend, seed, dtype, progress : as for `Autoencoder`.
    engine : "auto" (default), "reference" or "fast": which code runs the network and the optimizer.
        "reference" runs the reference layers of scratch_ae/layers/, the derivations' algorithms;
        "fast" runs `scratch_ae.fast.to_fast` of the same network (compiled Numba loops,
        channels-last convolutions, the fused Adam update), equal to the reference to rounding
        (tests/test_fast_*.py); "auto" is "fast" on the CPU where Numba is installed, else
        "reference".  On the GPU the layers are the reference (CuPy's kernels) and "fast" picks
        the fused CuPy Adam kernel.  `engine_` holds the resolved choice; checkpoints record it.
    """

    family = "conv"

    def __init__(self, input_shape=(1, 28, 28), channels=(16, 8), kernel_size=3, downsample="pool",
                 decoder="deconv+unpool", dense_code=None, activation="relu", output_activation="sigmoid", loss="mse",
                 weight_decay=0.0, l1=0.0, dropout=0.0, init="pytorch", optimizer="adam", lr=1e-3, epochs=8,
                 batch_size=100, noise=None, patience=None, backend="numpy", seed=0, dtype="float32",
                 progress=False, engine="auto"):
        self.input_shape = input_shape
        self.channels = channels
        self.kernel_size = kernel_size
        self.downsample = downsample
        self.decoder = decoder
        self.dense_code = dense_code
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.weight_decay = weight_decay
        self.l1 = l1
        self.dropout = dropout
        self.init = init
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.noise = noise
        self.patience = patience
        self.backend = backend
        self.seed = seed
        self.dtype = dtype
        self.progress = progress
        self.engine = engine
        self._build()

    # ------------------------------------------------------------------ building
    def _validate(self):
        shape = tuple(int(s) for s in self.input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"input_shape must be (channels, height, width), got {self.input_shape!r}")
        channels = [int(c) for c in self.channels]
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must list at least one positive channel count, got {self.channels!r}")
        if not (isinstance(self.kernel_size, (int, np.integer)) and self.kernel_size >= 1 and self.kernel_size % 2):
            raise ValueError(f"kernel_size must be an odd positive integer, got {self.kernel_size!r}")
        if self.downsample not in DOWNSAMPLING:
            raise ValueError(f"unknown downsample {self.downsample!r}; expected one of: {', '.join(DOWNSAMPLING)}")
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; expected one of: {', '.join(DECODERS)}")
        if self.downsample == "stride" and self.decoder != "deconv":
            raise ValueError(f"decoder={self.decoder!r} unpools through max-pool positions, which a stride-2 "
                             f"encoder does not have; use decoder='deconv' or downsample='pool'")
        if self.dense_code is not None and not (isinstance(self.dense_code, (int, np.integer))
                                                and not isinstance(self.dense_code, bool) and self.dense_code >= 1):
            raise ValueError(f"dense_code must be None or a positive integer (the code's width), got {self.dense_code!r}")
        if self.loss not in ("mse", "bce"):
            raise ValueError(f"unknown loss {self.loss!r}; expected one of: mse, bce")
        if self.loss == "bce" and activation_name(self.output_activation) != "sigmoid":
            raise ValueError(f"loss='bce' needs output_activation='sigmoid' (BCE compares probabilities), "
                             f"got {self.output_activation!r}")
        activation_name(self.activation)
        for name in ("l1", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout (the drop probability) must be in [0, 1), got {self.dropout!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return shape, channels

    def _build(self):
        shape, channels = self._validate()
        backend = self._backend_for_build()
        xp, dtype = backend.xp, np.dtype(self.dtype)
        rng = np.random.default_rng(self.seed)
        k, act = int(self.kernel_size), activation_name(self.activation)
        conv = dict(init=self.init, rng=rng, xp=xp, dtype=dtype)

        encoder, sizes, self.pools_ = [Reshape(shape)], [shape[1:]], []  # sizes[i]: encoder stage i's input
        self.pool_shapes_ = []  # per pool: ((C, H, W) it reads, (C, H, W) it returns)
        c_in, (H, W) = shape[0], shape[1:]
        for i, c_out in enumerate(channels):
            stride = 2 if self.downsample == "stride" else 1
            encoder.append(Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, need_input_grad=i > 0, **conv))
            H, W = conv_output_size(H, k, stride, k // 2), conv_output_size(W, k, stride, k // 2)
            encoder.append(make_activation(act))
            if self.downsample == "pool":
                pool = MaxPool2d(2, xp=xp)
                encoder.append(pool)
                self.pools_.append(pool)
                pool_in = (c_out, H, W)
                H, W = conv_output_size(H, 2, 2, 0), conv_output_size(W, 2, 2, 0)
                self.pool_shapes_.append((pool_in, (c_out, H, W)))
                if min(H, W) < 1:
                    raise ValueError(f"input_shape {shape} is too small for {len(channels)} pooled stages")
            sizes.append((H, W))  # stage i's output size: the next stage's input
            if self.dropout:
                encoder.append(Dropout(self.dropout, xp))
            c_in = c_out
        encoder.append(Flatten())
        self.code_shape_ = (channels[-1], H, W)
        decoder = []
        if self.dense_code is not None:
            maps, K = int(np.prod(self.code_shape_)), int(self.dense_code)
            encoder.append(self._dense(maps, K, rng, backend, dtype))
            decoder += [self._dense(K, maps, rng, backend, dtype), make_activation(act)]
            if self.dropout:
                decoder.append(Dropout(self.dropout, xp))

        decoder.append(Reshape(self.code_shape_))
        outs = [shape[0]] + channels[:-1]  # each decoder stage's output channels
        for i in reversed(range(len(channels))):
            target = sizes[i]  # the size before encoder stage i ('same' convolutions keep it)
            if self.decoder == "deconv":
                (pH, opH), (pW, opW) = _transpose_padding(H, target[0], k, 2), _transpose_padding(W, target[1], k, 2)
                decoder.append(ConvTranspose2d(channels[i], outs[i], k, stride=2, padding=(pH, pW),
                                               output_padding=(opH, opW), **conv))
            else:
                decoder.append(MaxUnpool2d(self.pools_[i]))
                if self.decoder == "deconv+unpool":
                    decoder.append(ConvTranspose2d(channels[i], outs[i], k, stride=1, padding=k // 2, **conv))
                else:
                    decoder.append(Conv2d(channels[i], outs[i], k, stride=1, padding=k // 2, **conv))
            H, W = target
            if i > 0:
                decoder.append(make_activation(act))
                if self.dropout:
                    decoder.append(Dropout(self.dropout, xp))
        if (H, W) != tuple(shape[1:]):
            raise ValueError(f"the decoder ends at {(H, W)}, not the input's {tuple(shape[1:])}")
        decoder += [make_activation(self.output_activation), Flatten()]
        # The loss sees the layers before the output activation and the final Flatten (see _loss_decoder_layers).
        self.encoder_, self.decoder_ = Sequential(encoder), Sequential(decoder)
        self.loss_fn_ = make_loss(self.loss)
        self.penalties_ = [L1ActivityPenalty(self.l1)] if self.l1 else []
        self.weight_penalty_ = L2WeightDecay(self.weight_decay) if self.weight_decay and self.optimizer != "adamw" else None

    def _dense(self, fan_in, fan_out, rng, backend, dtype):
        """A Dense layer initialised like the convolutions: init="pytorch" is torch.nn.Linear's default."""
        W, b = init_conv_weights((fan_in, fan_out), fan_out, fan_in, self.init, rng, dtype)
        return Dense(backend.asarray(W), backend.asarray(b), backend.xp)

    def _loss_decoder_layers(self):
        """With BCE the loss takes the logits: the decoder without its sigmoid (the Flatten stays)."""
        layers = self.decoder_.layers
        return layers[:-2] + layers[-1:] if self.loss == "bce" else layers

    def _named_layers(self):
        return self.encoder_.named_layers("encoder.") + self.decoder_.named_layers("decoder.")

    def layer_description(self):
        positions = {id(layer): name for name, layer in self.encoder_.named_layers("encoder.")}
        description = {"input_shape": list(self.image_shape), "encoder": [], "decoder": []}
        for side, network in (("encoder", self.encoder_), ("decoder", self.decoder_)):
            for layer in network.layers:
                entry = dict(layer.config())
                if isinstance(layer, MaxUnpool2d):
                    entry["pool"] = positions[id(layer.source)]
                description[side].append(entry)
        return description

    @property
    def image_shape(self):
        return tuple(int(s) for s in self.input_shape)

    def _params_for_config(self):
        params = self.get_params()
        params["input_shape"] = [int(s) for s in params["input_shape"]]
        params["channels"] = [int(c) for c in params["channels"]]
        params["dense_code"] = None if params["dense_code"] is None else int(params["dense_code"])
        return params

    # ------------------------------------------------------------------ sizes and the code
    @property
    def input_size(self):
        return int(np.prod(self.image_shape))

    @property
    def maps_size(self):
        """Values the encoder computes: the pooled (or strided) code maps, or the dense code's width."""
        return int(np.prod(self.code_shape_)) if self.dense_code is None else int(self.dense_code)

    @property
    def switch_sizes(self):
        """Argmax positions the unpooling decoder reads, per pool (0 for the 'deconv' decoder)."""
        if self.decoder == "deconv":
            return []
        return [int(np.prod(pooled)) for _, pooled in self.pool_shapes_]

    @property
    def code_size(self):
        return self.maps_size + sum(self.switch_sizes)

    def _encode(self, x):
        maps = super()._encode(x)
        if self.decoder == "deconv":
            return maps
        B = x.shape[0]
        return self.xp.concatenate([maps] + [pool.argmax.reshape(B, -1).astype(maps.dtype) for pool in self.pools_],
                                   axis=1)

    def _decode(self, code):
        if self.decoder == "deconv":
            return super()._decode(code)
        B, start = code.shape[0], self.maps_size
        maps = code[:, :start]
        for pool, (pool_in, pooled) in zip(self.pools_, self.pool_shapes_):
            size = int(np.prod(pooled))
            window = pool.kernel_size[0] * pool.kernel_size[1]
            switches = self.xp.clip(self.xp.rint(code[:, start:start + size]), 0, window - 1)
            pool.argmax = switches.astype(np.int8 if window <= 127 else np.int32).reshape(B, *pooled)
            pool.input_shape = (B, *pool_in)
            start += size
        return super()._decode(self.xp.ascontiguousarray(maps))


__all__ = ["ConvAutoencoder", "DECODERS", "DOWNSAMPLING"]
