"""Move weights between Keras and PyTorch layouts (numpy only).

Keras keeps images channels-last (N, H, W, C) and PyTorch channels-first (N, C, H, W), so
kernels are stored differently, and a ``Flatten`` orders its features (H, W, C) in Keras
but (C, H, W) in PyTorch: the first dense layer after a flatten needs its rows permuted.
"""
from __future__ import annotations

import numpy as np


def conv_kernel_keras_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Keras Conv2D kernel (kH, kW, C_in, C_out) -> PyTorch Conv2d weight (C_out, C_in, kH, kW)."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"a Conv2D kernel should be 4-D (kH, kW, C_in, C_out); got shape {kernel.shape}")
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def conv_kernel_torch_to_keras(weight: np.ndarray) -> np.ndarray:
    """PyTorch Conv2d weight (C_out, C_in, kH, kW) -> Keras Conv2D kernel (kH, kW, C_in, C_out)."""
    weight = np.asarray(weight)
    if weight.ndim != 4:
        raise ValueError(f"a Conv2d weight should be 4-D (C_out, C_in, kH, kW); got shape {weight.shape}")
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def dense_kernel_keras_to_torch(kernel: np.ndarray, flattened_from: tuple[int, int, int] | None = None) -> np.ndarray:
    """Keras Dense kernel (in, out) -> PyTorch Linear weight (out, in).

    flattened_from: the (H, W, C) shape the Dense layer's input was flattened from, when
    it follows a ``Flatten`` of feature maps; its rows are then reordered from Keras'
    (H, W, C) order to PyTorch's (C, H, W) order.
    """
    kernel = np.asarray(kernel)
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
    weight = np.asarray(weight)
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
