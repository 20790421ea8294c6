"""TensorFlow/Keras ``padding="same"`` for PyTorch convolutions, reproduced exactly.

PyTorch pads symmetrically; TensorFlow's ``"same"`` pads so that ``out = ceil(in / stride)`` and puts the odd pad
element *after* the data. Whenever the total pad is odd (stride 2 with an odd kernel on an even input, or any even
kernel with stride 1) the two frameworks disagree by one position, which is enough to break a weight port.

For a transposed convolution Keras asks for ``out = in * stride`` and TensorFlow crops (or pads) the full
transposed output so that it matches the forward ``"same"`` convolution whose gradient it is: the crop before is
``total // 2`` and the rest comes off the end. With kernel 3 / stride 2 or kernel 2 / stride 1 that means *keep the
first* ``out`` elements, so e.g. a temporal kernel ``(w0, w1)`` gives ``out[t] = w0*in[t] + w1*in[t-1]``.

Stable public API (other modules import it):

- :func:`same_padding` - ``(before, after)`` pad of one axis.
- :func:`pad_same` - pad the trailing spatial axes of a tensor for a strided / dilated convolution.
- :func:`transpose_same_crop` - ``(crop_before, out_size)`` of one axis of a transposed convolution.
- :func:`conv_same`, :func:`conv_transpose_same` - functional forms (1-D, 2-D or 3-D, chosen by ``weight.ndim``).
- :class:`Conv1dSame`, :class:`Conv2dSame`, :class:`Conv3dSame`,
  :class:`ConvTranspose1dSame`, :class:`ConvTranspose2dSame`, :class:`ConvTranspose3dSame` - drop-in subclasses of
  the ``torch.nn`` layers (same parameters, same ``state_dict`` keys) whose ``forward`` uses TF "same" semantics.
  Their constructors take no ``padding`` argument.

Layouts are PyTorch's: ``(B, C, *spatial)``; weights ``(out, in, *k)`` for convolutions and ``(in, out, *k)`` for
transposed convolutions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Conv1dSame",
    "Conv2dSame",
    "Conv3dSame",
    "ConvTranspose1dSame",
    "ConvTranspose2dSame",
    "ConvTranspose3dSame",
    "conv_same",
    "conv_transpose_same",
    "pad_same",
    "same_padding",
    "transpose_same_crop",
]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _as_tuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    out = tuple(int(v) for v in value)
    if len(out) != n:
        raise ValueError(f"{name} must have {n} entries (one per spatial axis), got {len(out)}: {out}")
    return out


def same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TF "same" pad of one axis of length ``size``: ``(before, after)``, with ``after >= before``.

    ``out = ceil(size / stride)``; ``total = max((out - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)``;
    ``before = total // 2``.

    >>> same_padding(240, 3, 2)   # stride 2, odd kernel, even input: the extra element goes after
    (0, 1)
    >>> same_padding(4, 2, 1)     # even kernel
    (0, 1)
    >>> same_padding(5, 3, 1)
    (1, 1)
    """
    if size < 1 or kernel_size < 1 or stride < 1 or dilation < 1:
        raise ValueError(
            f"size, kernel_size, stride and dilation must be >= 1, got {size}, {kernel_size}, {stride}, {dilation}"
        )
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pad_same(
    x: torch.Tensor,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
) -> torch.Tensor:
    """Zero-pad the trailing ``n = len(kernel_size)`` axes of ``x`` the way TF "same" does.

    ``x``: ``(..., *spatial)`` with ``len(spatial) = n``; returns ``(..., *padded_spatial)``. A following
    convolution with padding 0 and the same kernel/stride/dilation then gives ``ceil(size / stride)`` outputs.
    """
    n = 1 if isinstance(kernel_size, int) else len(kernel_size)
    if x.ndim < n:
        raise ValueError(f"expected a tensor with at least {n} axes to pad, got shape {tuple(x.shape)}")
    kernel = _as_tuple(kernel_size, n, "kernel_size")
    strides = _as_tuple(stride, n, "stride")
    dilations = _as_tuple(dilation, n, "dilation")
    spatial = x.shape[x.ndim - n :]
    pads: list[int] = []
    # F.pad takes (before, after) pairs starting from the LAST axis.
    for size, k, s, d in reversed(list(zip(spatial, kernel, strides, dilations))):
        pads.extend(same_padding(int(size), k, s, d))
    if not any(pads):
        return x
    return F.pad(x, pads)


def transpose_same_crop(size: int, kernel_size: int, stride: int = 1) -> tuple[int, int]:
    """For one axis of a Keras transposed convolution with ``padding="same"``: ``(crop_before, out_size)``.

    ``out_size = size * stride``. The full (padding-0) transposed output has ``(size - 1) * stride + kernel_size``
    elements; TF keeps ``full[crop_before : crop_before + out_size]`` (zeros past the end of ``full`` when the
    kernel is smaller than the stride), with ``crop_before = total // 2`` and
    ``total = max((size - 1) * stride + kernel_size - out_size, 0)``.

    >>> transpose_same_crop(60, 3, 2)   # keep the first 120 of 121
    (0, 120)
    >>> transpose_same_crop(4, 2, 1)    # keep the first 4 of 5: out[t] = w0*in[t] + w1*in[t-1]
    (0, 4)
    >>> transpose_same_crop(5, 3, 1)
    (1, 5)
    """
    if size < 1 or kernel_size < 1 or stride < 1:
        raise ValueError(f"size, kernel_size and stride must be >= 1, got {size}, {kernel_size}, {stride}")
    out_size = size * stride
    total = max((size - 1) * stride + kernel_size - out_size, 0)
    return total // 2, out_size


def conv_same(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Convolution with TF "same" padding. ``x``: ``(B, C_in, *spatial)``; ``weight``: ``(C_out, C_in/groups, *k)``.

    Returns ``(B, C_out, *ceil(spatial / stride))``.
    """
    n = weight.ndim - 2
    if n not in _CONV:
        raise ValueError(f"expected a 1-D, 2-D or 3-D convolution weight (3 to 5 axes), got shape {tuple(weight.shape)}")
    if x.ndim != n + 2:
        raise ValueError(f"expected input of {n + 2} axes (B, C, {n} spatial) for this weight, got {tuple(x.shape)}")
    kernel = tuple(weight.shape[2:])
    strides = _as_tuple(stride, n, "stride")
    dilations = _as_tuple(dilation, n, "dilation")
    x = pad_same(x, kernel, strides, dilations)
    return _CONV[n](x, weight, bias, stride=strides, padding=0, dilation=dilations, groups=groups)


def conv_transpose_same(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Transposed convolution with Keras/TF "same" cropping (dilation 1, no output padding).

    ``x``: ``(B, C_in, *spatial)``; ``weight``: ``(C_in, C_out/groups, *k)`` (PyTorch layout).
    Returns ``(B, C_out, *(spatial * stride))``.
    """
    n = weight.ndim - 2
    if n not in _CONV_TRANSPOSE:
        raise ValueError(
            f"expected a 1-D, 2-D or 3-D transposed-convolution weight (3 to 5 axes), got shape {tuple(weight.shape)}"
        )
    if x.ndim != n + 2:
        raise ValueError(f"expected input of {n + 2} axes (B, C, {n} spatial) for this weight, got {tuple(x.shape)}")
    kernel = tuple(weight.shape[2:])
    strides = _as_tuple(stride, n, "stride")
    full = _CONV_TRANSPOSE[n](x, weight, None, stride=strides, padding=0, groups=groups)
    # full: (B, C_out, *((size - 1) * stride + k)); crop (or zero-extend) each axis to size * stride.
    pads: list[int] = []
    for size, full_size, k, s in reversed(list(zip(x.shape[2:], full.shape[2:], kernel, strides))):
        before, out_size = transpose_same_crop(int(size), k, s)
        pads.extend((-before, out_size + before - int(full_size)))  # negative pad = crop
    if any(pads):
        full = F.pad(full, pads)
    if bias is not None:
        full = full + bias.view(1, -1, *([1] * n))  # (C_out,) -> (1, C_out, 1, ...)
    return full


class _ConvSameMixin:
    """Replaces ``forward`` of a ``torch.nn.ConvNd`` with TF "same" padding (the layer's own padding is 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_same(x, self.weight, self.bias, self.stride, self.dilation, self.groups)


class Conv1dSame(_ConvSameMixin, nn.Conv1d):
    """``nn.Conv1d`` with TF "same" padding. Input ``(B, C_in, L)`` -> ``(B, C_out, ceil(L / stride))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, dilation=1, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)


class Conv2dSame(_ConvSameMixin, nn.Conv2d):
    """``nn.Conv2d`` with TF "same" padding. Input ``(B, C_in, H, W)`` -> ``(B, C_out, ceil(H/s), ceil(W/s))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, dilation=1, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)


class Conv3dSame(_ConvSameMixin, nn.Conv3d):
    """``nn.Conv3d`` with TF "same" padding. Input ``(B, C_in, T, H, W)`` -> ``(B, C_out, *ceil((T, H, W) / s))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, dilation=1, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)


class _ConvTransposeSameMixin:
    """Replaces ``forward`` of a ``torch.nn.ConvTransposeNd`` with Keras "same" cropping (``out = in * stride``)."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("a 'same' transposed convolution fixes its output size to input * stride; "
                             f"got output_size={output_size}")
        return conv_transpose_same(x, self.weight, self.bias, self.stride, self.groups)


class ConvTranspose1dSame(_ConvTransposeSameMixin, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with Keras "same" cropping. ``(B, C_in, L)`` -> ``(B, C_out, L * stride)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, 0, groups, bias)


class ConvTranspose2dSame(_ConvTransposeSameMixin, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with Keras "same" cropping. ``(B, C_in, H, W)`` -> ``(B, C_out, H*s, W*s)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, 0, groups, bias)


class ConvTranspose3dSame(_ConvTransposeSameMixin, nn.ConvTranspose3d):
    """``nn.ConvTranspose3d`` with Keras "same" cropping. ``(B, C_in, T, H, W)`` -> ``(B, C_out, T*s, H*s, W*s)``.

    With kernel ``(2, 3, 3)`` and stride ``(1, 2, 2)`` this keeps the first ``T``, ``2H``, ``2W`` elements of the
    full output, so in time ``out[t] = w0*in[t] + w1*in[t-1]`` (causal).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, groups: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, 0, groups, bias)
