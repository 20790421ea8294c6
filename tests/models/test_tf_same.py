"""TF/Keras "same" padding and transposed-convolution cropping, on hand-computed cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vadkit.models.layers.tf_same import (
    Conv1dSame,
    Conv3dSame,
    ConvTranspose1dSame,
    ConvTranspose3dSame,
    conv_same,
    conv_transpose_same,
    pad_same,
    same_padding,
    transpose_same_crop,
)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected"),
    [
        (240, 3, 2, 1, (0, 1)),  # even input, stride 2: the extra pad goes after
        (241, 3, 2, 1, (1, 1)),
        (4, 2, 1, 1, (0, 1)),  # even kernel
        (1, 2, 1, 1, (0, 1)),
        (5, 3, 1, 1, (1, 1)),
        (5, 1, 2, 1, (0, 0)),
        (7, 3, 1, 2, (2, 2)),  # dilated: effective kernel 5
        (30, 3, 2, 1, (0, 1)),  # the sEnDec ConvLSTM input: 30 -> 15
    ],
)
def test_same_padding_table(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (60, 3, 2, (0, 120)),  # full output 121: keep the first 120
        (4, 2, 1, (0, 4)),  # full output 5: keep the first 4
        (5, 3, 1, (1, 5)),
        (3, 1, 2, (0, 6)),  # full output 5 < 6: zero-extended at the end
        (3, 2, 2, (0, 6)),
    ],
)
def test_transpose_same_crop_table(size, kernel, stride, expected):
    assert transpose_same_crop(size, kernel, stride) == expected


def test_same_padding_rejects_nonpositive_sizes():
    with pytest.raises(ValueError, match="must be >= 1"):
        same_padding(0, 3, 1)


def _conv1d_ones(kernel: int, stride: int) -> Conv1dSame:
    conv = Conv1dSame(1, 1, kernel, stride=stride, bias=False)
    nn.init.ones_(conv.weight)
    return conv


def test_conv_stride2_pads_after_only():
    # [1, 2, 3, 4] padded (0, 1) -> [1, 2, 3, 4, 0]; windows of 3 at stride 2: 1+2+3, 3+4+0
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    out = _conv1d_ones(3, 2)(x)
    assert out.tolist() == [[[6.0, 7.0]]]
    # PyTorch's symmetric padding=1 would give [0+1+2, 2+3+4] = [3, 9]
    assert nn.functional.conv1d(x, torch.ones(1, 1, 3), stride=2, padding=1).tolist() == [[[3.0, 9.0]]]


def test_stride1_odd_kernel_matches_pytorch_same():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7, 6)
    conv = Conv3dSame(3, 4, (3, 3, 5))
    expected = nn.functional.conv3d(x, conv.weight, conv.bias, padding="same")
    torch.testing.assert_close(conv(x), expected)


def _temporal_kernel(w0: float, w1: float) -> torch.Tensor:
    """A (1, 1, 2, 1, 1) kernel with taps w0, w1 along time."""
    return torch.tensor([w0, w1]).view(1, 1, 2, 1, 1)


def _ramp_clip(t: int) -> torch.Tensor:
    """(1, 1, T, 2, 2) with frame t = (t + 1) * [[1, 2], [3, 4]]."""
    base = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    return torch.stack([(i + 1) * base for i in range(t)]).view(1, 1, t, 2, 2)


@pytest.mark.parametrize("t", [1, 4])
def test_final_conv_is_anticausal_in_time(t):
    # the sEnDec head: kernel 2 in time, "same" pads time (0, 1): out[t] = w0*in[t] + w1*in[t+1], in[T] = 0
    x = _ramp_clip(t)
    out = conv_same(x, _temporal_kernel(1.0, 10.0))
    for i in range(t):
        following = x[0, 0, i + 1] if i + 1 < t else torch.zeros(2, 2)
        torch.testing.assert_close(out[0, 0, i], x[0, 0, i] + 10.0 * following)


def _spatial_ones_upsample(frame: torch.Tensor) -> torch.Tensor:
    """Hand-computed: a 3x3 ones kernel at stride 2, keep-the-first cropping, 1-D rule [a, b] -> [a, a, a+b, b]."""
    (a, b), (c, d) = frame.tolist()
    rows = [[a, a, a + b, b], [c, c, c + d, d]]
    top, bottom = rows
    return torch.tensor([top, top, [u + v for u, v in zip(top, bottom)], bottom])


def test_transposed_conv_keeps_first_elements_spatially():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 1, 2, 2)
    up = ConvTranspose3dSame(1, 1, (1, 3, 3), stride=(1, 2, 2), bias=False)
    nn.init.ones_(up.weight)
    out = up(x)
    expected = torch.tensor(
        [[1.0, 1.0, 3.0, 2.0], [1.0, 1.0, 3.0, 2.0], [4.0, 4.0, 10.0, 6.0], [3.0, 3.0, 7.0, 4.0]]
    )
    assert out.shape == (1, 1, 1, 4, 4)
    torch.testing.assert_close(out[0, 0, 0], expected)
    torch.testing.assert_close(out[0, 0, 0], _spatial_ones_upsample(x[0, 0, 0]))


@pytest.mark.parametrize("t", [1, 4])
def test_transposed_conv_is_causal_in_time(t):
    # sEnDec's CT3: kernel (2, 3, 3), stride (1, 2, 2): out[t] = w0*S(in[t]) + w1*S(in[t-1]), in[-1] = 0
    x = _ramp_clip(t)
    up = ConvTranspose3dSame(1, 1, (2, 3, 3), stride=(1, 2, 2))
    with torch.no_grad():
        up.weight.copy_(torch.ones(1, 1, 2, 3, 3) * torch.tensor([1.0, 10.0]).view(1, 1, 2, 1, 1))
        up.bias.fill_(0.5)
    out = up(x)
    assert out.shape == (1, 1, t, 4, 4)
    for i in range(t):
        expected = _spatial_ones_upsample(x[0, 0, i]) + 0.5
        if i > 0:
            expected = expected + 10.0 * _spatial_ones_upsample(x[0, 0, i - 1])
        torch.testing.assert_close(out[0, 0, i], expected)


def test_transposed_conv_smaller_kernel_than_stride_zero_extends_with_bias():
    up = ConvTranspose1dSame(1, 1, 1, stride=2)
    with torch.no_grad():
        up.weight.fill_(2.0)
        up.bias.fill_(1.0)
    out = up(torch.tensor([[[1.0, 2.0, 3.0]]]))
    # full output [2, 0, 4, 0, 6] (5 long) extended with one zero, then + bias everywhere
    assert out.tolist() == [[[3.0, 1.0, 5.0, 1.0, 7.0, 1.0]]]


def test_transposed_functional_matches_module_and_shapes():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 5, 6)
    up = ConvTranspose3dSame(4, 2, (2, 3, 3), stride=(1, 2, 2))
    out = conv_transpose_same(x, up.weight, up.bias, (1, 2, 2))
    assert out.shape == (2, 2, 3, 10, 12)
    torch.testing.assert_close(up(x), out)
    # equals the full padding-0 transposed conv with the trailing element of each axis dropped
    full = nn.functional.conv_transpose3d(x, up.weight, up.bias, stride=(1, 2, 2))
    torch.testing.assert_close(out, full[:, :, :3, :10, :12])


def test_same_layers_keep_the_torch_state_dict():
    assert set(Conv3dSame(2, 3, 3).state_dict()) == set(nn.Conv3d(2, 3, 3).state_dict())
    assert set(ConvTranspose3dSame(2, 3, 3).state_dict()) == set(nn.ConvTranspose3d(2, 3, 3).state_dict())


def test_pad_same_and_errors():
    x = torch.zeros(1, 1, 4, 6)
    assert pad_same(x, (3, 3), (2, 2)).shape == (1, 1, 5, 7)
    with pytest.raises(ValueError, match="2 entries"):
        pad_same(x, (3, 3), (2, 2, 2))
    with pytest.raises(ValueError, match="axes"):
        conv_same(torch.zeros(1, 1, 4), torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="output size"):
        ConvTranspose1dSame(1, 1, 3, stride=2)(torch.zeros(1, 1, 4), output_size=[9])
