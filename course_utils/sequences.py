"""Sequence tasks and tools shared by the recurrent lessons (04 RNN/BPTT, 05 LSTM, 06 GRU).

Framework-neutral: numpy only. Layouts: a batch of sequences is ``(N, T, D)`` (batch,
time, features), the layout of Keras and of PyTorch's ``batch_first=True``; a series
is ``(T,)`` or ``(T, D)``.

Recurrent weights are kept in one neutral layout, that of the equations with row vectors
(and of Keras' ``SimpleRNN``)::

    h_t = tanh(x_t @ W_xh + h_{t-1} @ W_hh + b_h)      x_t (N, D), h_t (N, H)
    y_t = h_t @ W_hy + b_y                              y_t (N, O)

with ``W_xh (D, H)``, ``W_hh (H, H)``, ``b_h (H,)``, ``W_hy (H, O)``, ``b_y (O,)``.
:func:`course_utils.porting.rnn_keras_to_torch` and
:func:`course_utils.porting.keras_rnn_weights_to_torch_state` move them into PyTorch's
``nn.RNN`` layout (and back); :func:`course_utils.checks.numerical_gradient` checks
gradients derived by hand.
"""
from __future__ import annotations

import numpy as np

ADDING_BASELINE_MSE = 1 / 6
"""MSE of always predicting 1 on the adding problem: the variance of a sum of two U(0, 1) (0.1667)."""


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- tasks


def adding_problem(n: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem of Hochreiter and Schmidhuber (1997), as used by Le et al. (2015).

    Each sequence has ``length`` steps of two features: a value drawn uniformly from
    [0, 1), and a marker that is 1 at exactly two steps, one in the first half
    (``0 .. length//2 - 1``) and one in the second half (``length//2 .. length - 1``),
    and 0 elsewhere. The target is the sum of the two marked values, in [0, 2).

    Always predicting 1 (the mean) gives an MSE of 1/6 = 0.167
    (:data:`ADDING_BASELINE_MSE`): a model must get below that to have learned anything.

    Args:
        n: number of sequences. length: time steps T, at least 2.
        seed: seeds ``numpy.random.default_rng``; the same (n, length, seed) always
            gives the same data, and different seeds give independent sets.

    Returns:
        ``x`` float32 (n, length, 2) and ``y`` float32 (n, 1).
    """
    n, length = _positive_int(n, "n"), _positive_int(length, "length")
    if length < 2:
        raise ValueError(f"length must be at least 2 (one marker in each half), got {length}")
    rng = np.random.default_rng(seed)
    values = rng.random((n, length))
    first = rng.integers(0, length // 2, n)
    second = rng.integers(length // 2, length, n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)[:, None]
    return x, y


# ----------------------------------------------------------------------------- series


def _as_series(series) -> np.ndarray:
    array = np.asarray(series, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"series must have shape (T,) or (T, D), got {np.shape(series)}")
    return array


def truncated_bptt_chunks(series, batch_size: int, chunk_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut one long series into chunks for truncated BPTT, next-step targets included.

    The inputs are ``series[:-1]`` and the targets ``series[1:]`` (predict the next
    value). Both are split into ``batch_size`` contiguous streams of equal length, and
    each stream into chunks of ``chunk_length`` steps, so that **chunk k + 1 of stream b
    continues chunk k of stream b**: the hidden state at the end of one chunk is the
    right initial state for the next. Steps that do not fill a whole chunk at the end
    of each stream are dropped.

    Args:
        series: (T,) or (T, D) values, e.g. a standardised time series.
        batch_size: B streams, trained side by side as one batch.
        chunk_length: L steps through which gradients flow back (the truncation).

    Returns:
        ``x`` and ``y``, float32 (K, B, L, D): K chunks, each a batch of B sequences.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    chunk_length = _positive_int(chunk_length, "chunk_length")
    values = _as_series(series)
    inputs, targets = values[:-1], values[1:]
    per_stream = len(inputs) // batch_size
    n_chunks = per_stream // chunk_length
    if n_chunks == 0:
        raise ValueError(
            f"a series of {len(values)} steps gives {len(inputs)} input steps, too few for "
            f"{batch_size} streams of at least one chunk of {chunk_length} steps"
        )
    used = n_chunks * chunk_length

    def cut(a: np.ndarray) -> np.ndarray:
        streams = a[: batch_size * per_stream].reshape(batch_size, per_stream, -1)[:, :used]
        return streams.reshape(batch_size, n_chunks, chunk_length, -1).transpose(1, 0, 2, 3).copy()

    return cut(inputs), cut(targets)


def persistence_forecast(series) -> np.ndarray:
    """The naive one-step forecast "next value = this value": predictions for steps
    1 .. T-1 of ``series`` (T,) or (T, D), i.e. ``series[:-1]``. A forecaster is only
    useful if it beats this baseline."""
    values = np.asarray(series)
    if values.ndim not in (1, 2) or len(values) < 2:
        raise ValueError(f"series must have shape (T,) or (T, D) with T >= 2, got {values.shape}")
    return values[:-1].copy()


def mae(y_true, y_pred) -> float:
    """Mean absolute error of two arrays of the same shape (in the data's units)."""
    a, b = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"mae needs equal shapes, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("mae of empty arrays is undefined")
    return float(np.mean(np.abs(a - b)))


# ----------------------------------------------------------------------------- weights


def spectral_radius(matrix) -> float:
    """The largest absolute eigenvalue of a square matrix (H, H)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"spectral_radius needs a square matrix, got shape {matrix.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def scale_to_spectral_radius(matrix, radius: float) -> np.ndarray:
    """``matrix`` (H, H) scaled so that its spectral radius is ``radius`` (> 0)."""
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    current = spectral_radius(matrix)
    if current == 0:
        raise ValueError("the matrix has spectral radius 0 and cannot be scaled to another")
    return np.asarray(matrix, dtype=np.float64) * (radius / current)


def random_rnn_weights(input_size: int, hidden_size: int, output_size: int | None = None,
                       spectral_radius: float | None = None, input_scale: float | None = None,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights of a simple RNN (and its output layer) in the neutral layout, float64.

    Entries are normal with the usual 1/sqrt(fan-in) scale; ``W_hh`` is then rescaled to
    ``spectral_radius`` when given, and ``W_xh`` to standard deviation ``input_scale``
    when given. Biases start at zero. The same arguments give the same weights, so both
    frameworks' notebooks can start from identical networks.

    Returns ``{"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}``, plus ``"W_hy": (H, O)``
    and ``"b_y": (O,)`` when ``output_size`` is given.
    """
    input_size, hidden_size = _positive_int(input_size, "input_size"), _positive_int(hidden_size, "hidden_size")
    rng = np.random.default_rng(seed)
    w_xh = rng.normal(size=(input_size, hidden_size)) * (input_scale if input_scale is not None else input_size ** -0.5)
    w_hh = rng.normal(size=(hidden_size, hidden_size)) / np.sqrt(hidden_size)
    if spectral_radius is not None:
        w_hh = scale_to_spectral_radius(w_hh, spectral_radius)
    weights = {"W_xh": w_xh, "W_hh": w_hh, "b_h": np.zeros(hidden_size)}
    if output_size is not None:
        output_size = _positive_int(output_size, "output_size")
        weights["W_hy"] = rng.normal(size=(hidden_size, output_size)) / np.sqrt(hidden_size)
        weights["b_y"] = np.zeros(output_size)
    return weights
