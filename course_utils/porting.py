"""Move weights between Keras and PyTorch layouts, in both directions (numpy only).

Nothing here imports TensorFlow or PyTorch: functions take numpy arrays (or anything
``np.asarray`` accepts; PyTorch and TensorFlow tensors are converted by duck typing) and
return numpy arrays of the same dtype. Every shape is checked, and a wrong one raises a
``ValueError`` that names the expected layout.

**Images.** Keras keeps images channels-last (N, H, W, C) and PyTorch channels-first
(N, C, H, W), so kernels are stored differently, and a ``Flatten`` orders its features
(H, W, C) in Keras but (C, H, W) in PyTorch: the first dense layer after a flatten needs
its rows permuted.

- :func:`conv_kernel_keras_to_torch` / :func:`conv_kernel_torch_to_keras`: one Conv2D kernel.
- :func:`dense_kernel_keras_to_torch` / :func:`dense_kernel_torch_to_keras`: one Dense kernel,
  ``flattened_from=(H, W, C)`` when it follows a ``Flatten``.
- :func:`keras_sequential_weights_to_torch` / :func:`torch_sequential_weights_to_keras`: a
  whole VGG-style stack (conv blocks, flatten, dense layers) at once, and
  :func:`save_sequential_npz` / :func:`load_sequential_npz`, its framework-neutral file.

**Recurrent layers** (``kind`` is ``"rnn"``, ``"lstm"`` or ``"gru"``). Keras keeps
``kernel (D, G*H)``, ``recurrent_kernel (H, G*H)`` and one ``bias``; PyTorch keeps the
transposes ``weight_ih (G*H, D)``, ``weight_hh (G*H, H)`` and two biases ``bias_ih``,
``bias_hh`` (G*H,), with G = 1, 4, 3 gates:

- ``"rnn"`` (``SimpleRNN`` / ``nn.RNN``): only the sum of PyTorch's two biases matters.
- ``"lstm"``: gate order i, f, g (the cell candidate, Keras' c), o in both frameworks;
  only the sum of PyTorch's two biases matters.
- ``"gru"``: Keras orders the gates z, r, h, PyTorch r, z, n. With Keras'
  ``reset_after=True`` (its default, and PyTorch's convention) the bias is (2, 3H):
  row 0 the input bias (PyTorch's ``bias_ih``), row 1 the recurrent bias (``bias_hh``),
  which stays separate because the reset gate multiplies it. Keras' ``reset_after=False``
  (bias (3H,)) applies the reset gate before the recurrent matrix, a different function
  that ``nn.GRU`` cannot represent.

- :func:`rnn_keras_to_torch` / :func:`rnn_torch_to_keras`: one layer, one direction.
- :func:`keras_rnn_weights_to_torch_state` / :func:`torch_state_to_keras_rnn_weights`: stacked
  and bidirectional layers, with PyTorch's ``state_dict`` names.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from os import PathLike

import numpy as np

from .checks import to_numpy


def conv_kernel_keras_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Keras Conv2D kernel (kH, kW, C_in, C_out) -> PyTorch Conv2d weight (C_out, C_in, kH, kW)."""
    kernel = to_numpy(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"a Conv2D kernel should be 4-D (kH, kW, C_in, C_out); got shape {kernel.shape}")
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def conv_kernel_torch_to_keras(weight: np.ndarray) -> np.ndarray:
    """PyTorch Conv2d weight (C_out, C_in, kH, kW) -> Keras Conv2D kernel (kH, kW, C_in, C_out)."""
    weight = to_numpy(weight)
    if weight.ndim != 4:
        raise ValueError(f"a Conv2d weight should be 4-D (C_out, C_in, kH, kW); got shape {weight.shape}")
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def dense_kernel_keras_to_torch(kernel: np.ndarray, flattened_from: tuple[int, int, int] | None = None) -> np.ndarray:
    """Keras Dense kernel (in, out) -> PyTorch Linear weight (out, in).

    flattened_from: the (H, W, C) shape the Dense layer's input was flattened from, when
    it follows a ``Flatten`` of feature maps; its rows are then reordered from Keras'
    (H, W, C) order to PyTorch's (C, H, W) order.
    """
    kernel = to_numpy(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"a Dense kernel should be 2-D (in, out); got shape {kernel.shape}")
    if flattened_from is not None:
        h, w, c = flattened_from
        if h * w * c != kernel.shape[0]:
            raise ValueError(
                f"flattened_from={flattened_from} has {h * w * c} features but the kernel has {kernel.shape[0]} inputs"
            )
        kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
    return np.ascontiguousarray(kernel.T)


def dense_kernel_torch_to_keras(weight: np.ndarray, flattened_from: tuple[int, int, int] | None = None) -> np.ndarray:
    """PyTorch Linear weight (out, in) -> Keras Dense kernel (in, out); the inverse of
    :func:`dense_kernel_keras_to_torch`, with ``flattened_from`` still given as (H, W, C)."""
    weight = to_numpy(weight)
    if weight.ndim != 2:
        raise ValueError(f"a Linear weight should be 2-D (out, in); got shape {weight.shape}")
    kernel = weight.T
    if flattened_from is not None:
        h, w, c = flattened_from
        if h * w * c != kernel.shape[0]:
            raise ValueError(
                f"flattened_from={flattened_from} has {h * w * c} features but the weight has {kernel.shape[0]} inputs"
            )
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    return np.ascontiguousarray(kernel)


# ----------------------------------------------------------------------------- a VGG-style stack


def _split_layers(weights, torch_layout: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Group a flat list of arrays into (kernel, bias or None) per layer, a kernel being
    4-D (conv) or 2-D (dense) and a bias the 1-D array right after it."""
    arrays = [to_numpy(w) for w in weights]
    names = ("Conv2d weight (C_out, C_in, kH, kW) or Linear weight (out, in)" if torch_layout
             else "Conv2D kernel (kH, kW, C_in, C_out) or Dense kernel (in, out)")
    layers: list[tuple[np.ndarray, np.ndarray | None]] = []
    for index, array in enumerate(arrays):
        if array.ndim in (2, 4):
            layers.append((array, None))
        elif array.ndim == 1 and layers and layers[-1][1] is None:
            kernel = layers[-1][0]
            outputs = kernel.shape[0] if torch_layout else kernel.shape[-1]
            if array.shape != (outputs,):
                raise ValueError(f"array {index} should be the bias ({outputs},) of the layer before it; "
                                 f"got shape {array.shape}")
            layers[-1] = (kernel, array)
        else:
            raise ValueError(
                f"array {index} has shape {array.shape}: expected a {names}, or a 1-D bias right after one "
                "(only Conv2D/Conv2d and Dense/Linear layers carry weights in a VGG-style stack; no batch norm)"
            )
    if not layers:
        raise ValueError("no weights given")
    return layers


def _flatten_rows(conv_channels: int | None, rows: int, flatten_from, index: int):
    """The (H, W, C) to reorder the first dense layer after the convs by, or None."""
    if conv_channels is None:
        return None
    if flatten_from is None:
        if rows == conv_channels:  # a 1 x 1 map (or global pooling): nothing to reorder
            return None
        raise ValueError(
            f"dense layer {index} follows a conv layer with {conv_channels} channels but has {rows} inputs: "
            "give flatten_from=(H, W, C), the feature-map shape at the Flatten"
        )
    h, w, c = (int(v) for v in flatten_from)
    if c != conv_channels:
        raise ValueError(f"flatten_from={tuple(flatten_from)} has C={c} but the last conv layer has {conv_channels} channels")
    return h, w, c


def keras_sequential_weights_to_torch(weights: Sequence, flatten_from: tuple[int, int, int] | None = None
                                      ) -> list[np.ndarray]:
    """The weights of a whole VGG-style Keras stack -> the same network's PyTorch parameters.

    The network: conv blocks (``Conv2D`` layers, typically 3x3 with ``padding="same"``, each
    block ending in a 2x2 ``MaxPool2D``), then ``Flatten``, then ``Dense`` layers; in PyTorch
    ``Conv2d``/``MaxPool2d``/``Flatten``/``Linear`` modules in the same order (activations,
    pooling and dropout carry no weights and may sit anywhere).

    Args:
        weights: ``keras_model.get_weights()``: per layer with weights, its kernel, then its
            bias if it has one. Conv2D kernels (kH, kW, C_in, C_out), Dense kernels (in, out),
            biases (out,). A kernel's kind is read from its rank (4-D conv, 2-D dense).
        flatten_from: the (H, W, C) feature-map shape that ``Flatten`` receives: for n blocks
            of "same" 3x3 convs and 2x2 pooling on (H0, W0) images, ``(H0 // 2**n, W0 // 2**n,
            C_last)``. The first dense layer after the convs has its rows reordered from
            Keras' (H, W, C) order to PyTorch's (C, H, W). It may be omitted only when that
            layer's inputs equal the channel count (a 1x1 map or global pooling).

    Returns:
        The PyTorch parameters in order, per layer the weight then the bias (Conv2d
        (C_out, C_in, kH, kW), Linear (out, in)): the order of ``model.parameters()`` of the
        matching ``nn.Sequential``, so ``for p, w in zip(model.parameters(), result):
        p.data.copy_(torch.from_numpy(w))`` loads them.
    """
    result: list[np.ndarray] = []
    channels = None
    for index, (kernel, bias) in enumerate(_split_layers(weights, torch_layout=False)):
        if kernel.ndim == 4:
            result.append(conv_kernel_keras_to_torch(kernel))
            channels = kernel.shape[3]
        else:
            result.append(dense_kernel_keras_to_torch(kernel, _flatten_rows(channels, kernel.shape[0], flatten_from, index)))
            channels = None
        if bias is not None:
            result.append(bias.copy())
    return result


def torch_sequential_weights_to_keras(params: Sequence, flatten_from: tuple[int, int, int] | None = None
                                      ) -> list[np.ndarray]:
    """The inverse of :func:`keras_sequential_weights_to_torch`: PyTorch parameters in order
    (``list(model.parameters())``, tensors or arrays; Conv2d weights (C_out, C_in, kH, kW),
    Linear weights (out, in), each followed by its bias if it has one) -> the list that
    ``keras_model.set_weights`` takes. ``flatten_from`` is still Keras' (H, W, C) at the
    ``Flatten``."""
    result: list[np.ndarray] = []
    channels = None
    for index, (weight, bias) in enumerate(_split_layers(params, torch_layout=True)):
        if weight.ndim == 4:
            result.append(conv_kernel_torch_to_keras(weight))
            channels = weight.shape[0]
        else:
            result.append(dense_kernel_torch_to_keras(weight, _flatten_rows(channels, weight.shape[1], flatten_from, index)))
            channels = None
        if bias is not None:
            result.append(bias.copy())
    return result


_NPZ_WEIGHT = "weights_{:03d}"


def save_sequential_npz(path: str | PathLike, keras_weights: Sequence, flatten_from: tuple[int, int, int] | None = None,
                        **metadata) -> None:
    """Save a VGG-style stack as a framework-neutral ``.npz`` file, in Keras' layout.

    The file holds:

    - ``weights_000``, ``weights_001``, ...: the arrays of ``keras_model.get_weights()`` in
      order (Conv2D kernels (kH, kW, C_in, C_out), Dense kernels (in, out) with the first
      dense layer's rows in Keras' flatten order (H, W, C), biases (out,));
    - ``flatten_from``: int64 (3,), the (H, W, C) at the ``Flatten`` (absent when not given);
    - any ``metadata`` given as keyword arrays (e.g. ``input_shape``, ``class_names``, the
      normalisation ``mean`` and ``std``), under their own names.

    Read it with :func:`load_sequential_npz` in either framework's layout, or with plain
    ``np.load`` (the arrays are ordinary numpy arrays; no pickling).
    """
    arrays = {_NPZ_WEIGHT.format(i): to_numpy(w) for i, w in enumerate(keras_weights)}
    _split_layers(arrays.values(), torch_layout=False)  # refuse what cannot be loaded back
    if flatten_from is not None:
        arrays["flatten_from"] = np.asarray(flatten_from, dtype=np.int64)
    for name, value in metadata.items():
        if name in arrays or re.fullmatch(r"weights_\d+", name):
            raise ValueError(f"metadata name {name!r} is reserved for the weights")
        arrays[name] = np.asarray(value)
    np.savez(path, **arrays)


def load_sequential_npz(path: str | PathLike, layout: str = "keras") -> list[np.ndarray]:
    """The weights saved by :func:`save_sequential_npz`, in ``layout`` ``"keras"`` (for
    ``keras_model.set_weights``) or ``"torch"`` (in the order of ``model.parameters()``,
    the first dense layer reordered by the file's ``flatten_from``). Metadata:
    ``np.load(path)["input_shape"]`` etc."""
    if layout not in ("keras", "torch"):
        raise ValueError(f"layout must be 'keras' or 'torch', got {layout!r}")
    with np.load(path, allow_pickle=False) as data:
        count = sum(1 for name in data.files if re.fullmatch(r"weights_\d+", name))
        missing = [_NPZ_WEIGHT.format(i) for i in range(count) if _NPZ_WEIGHT.format(i) not in data.files]
        if count == 0 or missing:
            raise ValueError(f"{path} is not a file of save_sequential_npz: "
                             + ("no weights_NNN arrays" if count == 0 else f"missing {missing}"))
        weights = [data[_NPZ_WEIGHT.format(i)] for i in range(count)]
        flatten_from = tuple(int(v) for v in data["flatten_from"]) if "flatten_from" in data.files else None
    if layout == "keras":
        return weights
    return keras_sequential_weights_to_torch(weights, flatten_from)


# ----------------------------------------------------------------------------- recurrent layers

RNN_KINDS = {"rnn": 1, "lstm": 4, "gru": 3}
"""The recurrent layer kinds and their number of gate blocks G (weights have G*H columns or rows)."""


def _gates(kind: str) -> int:
    if kind not in RNN_KINDS:
        raise ValueError(f"kind must be one of {sorted(RNN_KINDS)}, got {kind!r}")
    return RNN_KINDS[kind]


def _swap_first_two_blocks(array: np.ndarray, hidden: int, axis: int) -> np.ndarray:
    """GRU gate blocks along ``axis``: Keras z, r, h <-> PyTorch r, z, n (its own inverse)."""
    z, r, rest = np.split(array, [hidden, 2 * hidden], axis=axis)
    return np.concatenate([r, z, rest], axis=axis)


def rnn_keras_to_torch(kind: str, kernel, recurrent_kernel, bias) -> dict[str, np.ndarray]:
    """One Keras recurrent layer (one direction) -> PyTorch's weights of the same layer.

    Args:
        kind: ``"rnn"`` (``SimpleRNN``), ``"lstm"`` or ``"gru"``; G = 1, 4 or 3 gates.
        kernel: (D, G*H). recurrent_kernel: (H, G*H).
        bias: (G*H,); for a GRU (2, 3H), Keras' ``reset_after=True`` layout (input bias;
            recurrent bias). A GRU bias (3H,) means ``reset_after=False``, which PyTorch
            cannot represent: ``ValueError``.

    Returns:
        ``{"weight_ih": (G*H, D), "weight_hh": (G*H, H), "bias_ih": (G*H,), "bias_hh": (G*H,)}``
        (without the ``_l0`` suffix of ``nn.RNN``'s state dict; see
        :func:`keras_rnn_weights_to_torch_state`). For rnn and lstm ``bias_ih`` is Keras' bias
        and ``bias_hh`` zeros; for a GRU the gate blocks are reordered z, r, h -> r, z, n.
    """
    gates = _gates(kind)
    kernel, recurrent_kernel, bias = to_numpy(kernel), to_numpy(recurrent_kernel), to_numpy(bias)
    hidden = recurrent_kernel.shape[0] if recurrent_kernel.ndim == 2 else 0
    bias_shape = (2, 3 * hidden) if kind == "gru" else (gates * hidden,)
    if kind == "gru" and bias.shape == (3 * hidden,) and hidden:
        raise ValueError(
            "a Keras GRU bias of shape (3H,) means reset_after=False, which applies the reset gate before "
            "the recurrent matrix; PyTorch's nn.GRU cannot represent that function. Use "
            "keras.layers.GRU(..., reset_after=True) (the default), whose bias has shape (2, 3H)"
        )
    if (hidden == 0 or kernel.ndim != 2 or kernel.shape[1] != gates * hidden
            or recurrent_kernel.shape != (hidden, gates * hidden) or bias.shape != bias_shape):
        g = "" if gates == 1 else str(gates)
        raise ValueError(
            f"a Keras {kind} layer has kernel (D, {g}H), recurrent_kernel (H, {g}H) and bias "
            f"{'(2, 3H)' if kind == 'gru' else f'({g}H,)'}; got {kernel.shape}, {recurrent_kernel.shape} "
            f"and {bias.shape}"
        )
    weight_ih, weight_hh = kernel.T, recurrent_kernel.T
    if kind == "gru":
        weight_ih = _swap_first_two_blocks(weight_ih, hidden, axis=0)
        weight_hh = _swap_first_two_blocks(weight_hh, hidden, axis=0)
        bias_ih = _swap_first_two_blocks(bias[0], hidden, axis=0)
        bias_hh = _swap_first_two_blocks(bias[1], hidden, axis=0)
    else:
        bias_ih, bias_hh = bias.copy(), np.zeros_like(bias)
    return {"weight_ih": np.ascontiguousarray(weight_ih), "weight_hh": np.ascontiguousarray(weight_hh),
            "bias_ih": np.ascontiguousarray(bias_ih), "bias_hh": np.ascontiguousarray(bias_hh)}


def rnn_torch_to_keras(kind: str, weight_ih, weight_hh, bias_ih, bias_hh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One PyTorch recurrent layer (one direction) -> Keras' ``(kernel, recurrent_kernel, bias)``.

    Args:
        kind: ``"rnn"``, ``"lstm"`` or ``"gru"``; G = 1, 4 or 3 gates.
        weight_ih (G*H, D), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,): arrays or
            tensors, e.g. ``rnn.weight_ih_l0``.

    Returns:
        kernel (D, G*H), recurrent_kernel (H, G*H) and bias: for rnn and lstm (G*H,) =
        ``bias_ih + bias_hh``; for a GRU (2, 3H) = [bias_ih; bias_hh] with the gate blocks
        reordered r, z, n -> z, r, h, for a Keras ``GRU(reset_after=True)``.
    """
    gates = _gates(kind)
    weight_ih, weight_hh, bias_ih, bias_hh = (to_numpy(a) for a in (weight_ih, weight_hh, bias_ih, bias_hh))
    hidden = weight_hh.shape[1] if weight_hh.ndim == 2 else 0
    rows = gates * hidden
    if (hidden == 0 or weight_ih.ndim != 2 or weight_ih.shape[0] != rows or weight_hh.shape != (rows, hidden)
            or bias_ih.shape != (rows,) or bias_hh.shape != (rows,)):
        g = "" if gates == 1 else str(gates)
        raise ValueError(
            f"a PyTorch {kind} layer has weight_ih ({g}H, D), weight_hh ({g}H, H), bias_ih ({g}H,) and "
            f"bias_hh ({g}H,); got {weight_ih.shape}, {weight_hh.shape}, {bias_ih.shape} and {bias_hh.shape}"
        )
    if kind == "gru":
        weight_ih = _swap_first_two_blocks(weight_ih, hidden, axis=0)
        weight_hh = _swap_first_two_blocks(weight_hh, hidden, axis=0)
        bias = np.stack([_swap_first_two_blocks(bias_ih, hidden, axis=0), _swap_first_two_blocks(bias_hh, hidden, axis=0)])
    else:
        bias = bias_ih + bias_hh
    return np.ascontiguousarray(weight_ih.T), np.ascontiguousarray(weight_hh.T), bias


def _directions(bidirectional: bool) -> tuple[str, ...]:
    return ("", "_reverse") if bidirectional else ("",)


def keras_rnn_weights_to_torch_state(kind: str, layers: Sequence, num_layers: int = 1, bidirectional: bool = False,
                                     prefix: str = "") -> dict[str, np.ndarray]:
    """Keras recurrent layers (stacked, possibly bidirectional) -> the ``state_dict`` of one
    PyTorch ``nn.RNN``/``nn.LSTM``/``nn.GRU(..., num_layers, bidirectional, batch_first=True)``.

    Args:
        kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        layers: one ``(kernel, recurrent_kernel, bias)`` per layer and direction, ordered
            layer 0 forward, layer 0 backward (when bidirectional), layer 1 forward, ...;
            or the flat list of arrays that ``get_weights()`` of those Keras layers gives
            (three per layer and direction; a ``Bidirectional`` layer gives its forward
            layer's, then its backward layer's). In Keras: ``num_layers`` layers with
            ``return_sequences=True`` (except perhaps the last), each wrapped in
            ``keras.layers.Bidirectional(layer)`` (``merge_mode="concat"``) when bidirectional.
        num_layers: the number of stacked layers K. bidirectional: two directions per layer.
        prefix: prepended to every name, e.g. ``"rnn."`` for a module holding it as ``.rnn``.

    Returns:
        ``{"weight_ih_l{k}": ..., "weight_hh_l{k}": ..., "bias_ih_l{k}": ..., "bias_hh_l{k}": ...}``
        for k < K, and the same names ending in ``_reverse`` for the backward direction
        (shapes as in :func:`rnn_keras_to_torch`). Layer k > 0 takes H (or 2H when
        bidirectional) inputs: the outputs of the layer below.
    """
    tuples = _group_layers(layers)
    directions = _directions(bidirectional)
    _check_count(len(tuples), num_layers, bidirectional)
    state: dict[str, np.ndarray] = {}
    hidden = None
    for index, weights in enumerate(tuples):
        k, suffix = divmod(index, len(directions))
        try:
            ported = rnn_keras_to_torch(kind, *weights)
        except ValueError as error:
            raise ValueError(f"layer {k}{' backward' if suffix else ''}: {error}") from None
        hidden = _check_stack_shapes(ported["weight_hh"].shape[1], ported["weight_ih"].shape[1], hidden, k,
                                     len(directions))
        for name, value in ported.items():
            state[f"{prefix}{name}_l{k}{directions[suffix]}"] = value
    return state


def torch_state_to_keras_rnn_weights(kind: str, state: Mapping, num_layers: int = 1, bidirectional: bool = False,
                                     prefix: str = "") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The inverse of :func:`keras_rnn_weights_to_torch_state`: a PyTorch recurrent layer's
    ``state_dict()`` (tensors or arrays; names ``{prefix}weight_ih_l{k}[_reverse]`` etc.;
    other names are ignored) -> one ``(kernel, recurrent_kernel, bias)`` per layer and
    direction, ordered layer 0 forward, layer 0 backward, layer 1 forward, ...: what the
    Keras layers' ``set_weights`` take (a ``Bidirectional`` layer: the forward tuple's
    arrays then the backward tuple's)."""
    _gates(kind)
    directions = _directions(bidirectional)
    pattern = re.compile(re.escape(prefix) + r"(weight|bias)_(ih|hh)_l(\d+)(_reverse)?")
    for name in state:
        match = pattern.fullmatch(name)
        if match and (int(match[3]) >= num_layers or (match[4] and not bidirectional)):
            raise ValueError(f"the state has {name!r}, but num_layers={num_layers} and bidirectional={bidirectional}")
    result = []
    hidden = None
    for k in range(num_layers):
        for suffix in directions:
            names = [f"{prefix}{w}_l{k}{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            missing = [name for name in names if name not in state]
            if missing:
                raise ValueError(f"the state lacks {missing} (expected num_layers={num_layers}, "
                                 f"bidirectional={bidirectional}, a layer with biases, prefix={prefix!r})")
            weights = [to_numpy(state[name]) for name in names]
            try:
                kernel, recurrent, bias = rnn_torch_to_keras(kind, *weights)
            except ValueError as error:
                raise ValueError(f"layer {k}{' backward' if suffix else ''}: {error}") from None
            hidden = _check_stack_shapes(recurrent.shape[0], kernel.shape[0], hidden, k, len(directions))
            result.append((kernel, recurrent, bias))
    return result


def _group_layers(layers: Sequence) -> list[tuple]:
    """(kernel, recurrent_kernel, bias) tuples from tuples or from a flat list of arrays."""
    layers = list(layers)
    if layers and all(isinstance(item, (tuple, list)) for item in layers):
        bad = [i for i, item in enumerate(layers) if len(item) != 3]
        if bad:
            raise ValueError(f"each layer should be (kernel, recurrent_kernel, bias); layer {bad[0]} has "
                             f"{len(layers[bad[0]])} arrays")
        return [tuple(item) for item in layers]
    if len(layers) % 3:
        raise ValueError(f"a flat list of recurrent weights has three arrays per layer and direction; got {len(layers)}")
    return [tuple(layers[i:i + 3]) for i in range(0, len(layers), 3)]


def _check_count(count: int, num_layers: int, bidirectional: bool) -> None:
    if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
    expected = num_layers * (2 if bidirectional else 1)
    if count != expected:
        raise ValueError(
            f"num_layers={num_layers}, bidirectional={bidirectional} needs {expected} (kernel, recurrent_kernel, bias) "
            f"groups, ordered layer 0 forward{', layer 0 backward' if bidirectional else ''}, layer 1 ...; got {count}"
        )


def _check_stack_shapes(hidden: int, inputs: int, first_hidden: int | None, k: int, n_directions: int) -> int:
    """PyTorch stacks layers of one hidden size H; layer k > 0 takes n_directions * H inputs."""
    if first_hidden is not None and hidden != first_hidden:
        raise ValueError(f"layer {k} has {hidden} units but layer 0 has {first_hidden}: a PyTorch stack has one hidden size")
    if k > 0 and inputs != n_directions * hidden:
        raise ValueError(f"layer {k} takes {inputs} inputs; stacked on layers of {hidden} units"
                         f"{' in two directions' if n_directions == 2 else ''} it needs {n_directions * hidden}")
    return hidden
