"""Student-facing checks whose failure messages say what was expected and what came.

Framework-neutral: tensors of either framework are turned into numpy arrays by
duck typing (``.detach()``/``.numpy()``), without importing the framework.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def to_numpy(x) -> np.ndarray:
    """A numpy copy of a numpy array, a PyTorch tensor, a TensorFlow tensor or a list."""
    if hasattr(x, "detach"):  # torch.Tensor, possibly on a GPU or requiring grad
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            x = x.float()
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def _shape_text(shape) -> str:
    return "(" + ", ".join("*" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_shape(x, expected: Sequence[int | None], name: str = "result") -> None:
    """Assert that ``x`` has shape ``expected``; ``None`` in ``expected`` matches any size."""
    shape = x.shape if hasattr(x, "shape") else np.shape(x)
    actual = tuple(None if d is None else int(d) for d in shape)
    expected = tuple(expected)
    ok = len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))
    if not ok:
        raise AssertionError(
            f"{name} should have shape {_shape_text(expected)} but has shape {_shape_text(actual)}"
        )


def rel_error(x, y, eps: float = 1e-8) -> float:
    """CS231n's relative error: max |x - y| / max(eps, |x| + |y|), elementwise then the maximum."""
    x, y = to_numpy(x).astype(np.float64), to_numpy(y).astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error needs equal shapes, got {x.shape} and {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(eps, np.abs(x) + np.abs(y))))


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f`` at ``x``, one entry at a time.

    ``grad[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every index ``i`` of ``x``:
    two calls of ``f`` per entry, so use it on small problems, as an independent check of a
    gradient derived by hand or by automatic differentiation. In float64 its error is about
    ``eps**2`` (truncation) plus ``1e-16 * |f| / eps`` (rounding): near 1e-10 for ``eps=1e-6``.

    Args:
        f: takes a float64 numpy array of ``x``'s shape and returns a scalar (a float, a
            0-d array or a one-element tensor: anything ``float()`` accepts). It is handed
            the same working copy every time, perturbed at one entry; it must not keep or
            change it. Close over whatever else it needs (``lambda w: loss(w, data)``).
        x: the point, an array or a tensor of either framework, any shape (N1, ..., Nk).
            It is not changed: a float64 copy is perturbed.
        eps: the step, in the units of ``x``.

    Returns:
        float64 numpy array of ``x``'s shape: dF/dx, in units of ``f`` per unit of ``x``.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    point = np.array(to_numpy(x), dtype=np.float64)  # a copy: x itself is never touched
    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        saved = point[index]
        point[index] = saved + eps
        plus = float(f(point))
        point[index] = saved - eps
        minus = float(f(point))
        point[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def check_close(actual, expected, *, rtol: float = 1e-5, atol: float = 1e-6, name: str = "result") -> None:
    """Assert that ``actual`` matches ``expected`` elementwise (``numpy.allclose`` rules).

    The message gives the shapes when they differ, else the largest difference,
    where it is and the two values there.
    """
    a, e = to_numpy(actual), to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(
            f"{name} should have shape {_shape_text(e.shape)} but has shape {_shape_text(a.shape)}"
        )
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    if np.isnan(a64).any() and not np.isnan(e64).any():
        raise AssertionError(f"{name} contains NaN at {np.argwhere(np.isnan(a64))[0].tolist()}")
    close = np.isclose(a64, e64, rtol=rtol, atol=atol)
    if not close.all():
        diff = np.abs(a64 - e64)
        where = np.unravel_index(int(np.nanargmax(np.where(close, -1.0, diff))), diff.shape)
        raise AssertionError(
            f"{name} differs from the expected values at {int((~close).sum())} of {close.size} "
            f"positions; the largest difference is {diff[where]:.3g} at index {tuple(int(i) for i in where)} "
            f"(got {a64[where]:.6g}, expected {e64[where]:.6g}); relative error {rel_error(a64, e64):.3g}"
        )


def check_equal(actual, expected, name: str = "result") -> None:
    """Assert exact equality of two values or arrays, with a message naming both."""
    a, e = to_numpy(actual), to_numpy(expected)
    if a.shape != e.shape or not np.array_equal(a, e):
        if a.shape != e.shape:
            raise AssertionError(
                f"{name} should have shape {_shape_text(e.shape)} but has shape {_shape_text(a.shape)}"
            )
        wrong = np.argwhere(a != e)
        raise AssertionError(
            f"{name} differs from the expected value at {len(wrong)} of {a.size} positions, "
            f"first at {tuple(wrong[0].tolist())}: got {a[tuple(wrong[0])].item()!r}, expected {e[tuple(wrong[0])].item()!r}"
            if a.ndim else f"{name} should be {e.item()!r} but is {a.item()!r}"
        )
