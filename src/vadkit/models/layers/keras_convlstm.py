"""A ConvLSTM with the exact semantics of Keras-2 ``ConvLSTM2D`` (used by sEnDec).

Differences from the textbook ConvLSTM (and from :mod:`vadkit.models.layers.convlstm`):

- the *input* convolution may be strided and uses TF "same" padding; the recurrent convolution is stride 1, "same";
- the bias is on the input path only; with ``unit_forget_bias`` the forget bias starts at 1;
- gate order along the channel axis is ``i, f, c, o`` (the Keras kernel's last axis, split in four);
- Keras-2 ``hard_sigmoid(z) = clip(0.2 z + 0.5, 0, 1)`` as the default recurrent activation;
- ``c_t = f * c_{t-1} + i * act(x_c + h_c)`` and ``h_t = o * act(c_t)``, ``act`` configurable (sEnDec: ReLU);
- zero initial state; no peepholes.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vadkit.models.layers.tf_same import Conv2dSame

__all__ = ["KerasConvLSTM2d", "keras_hard_sigmoid"]


def keras_hard_sigmoid(z: torch.Tensor) -> torch.Tensor:
    """Keras-2 hard sigmoid ``clip(0.2 z + 0.5, 0, 1)`` (not PyTorch's ``hardsigmoid``, whose slope is 1/6)."""
    return torch.clamp(0.2 * z + 0.5, 0.0, 1.0)


Activation = Literal["relu", "tanh", "sigmoid", "hard_sigmoid", "linear"]
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": keras_hard_sigmoid,
    "linear": lambda z: z,
}


def _activation(name: str, what: str) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"{what} must be one of {sorted(_ACTIVATIONS)}, got {name!r}") from None


class KerasConvLSTM2d(nn.Module):
    """Keras-2 ``ConvLSTM2D`` over a channels-first clip.

    Input ``(B, C_in, T, H, W)``; output ``(B, hidden, T, H', W')`` with ``return_sequences=True`` or
    ``(B, hidden, H', W')`` (last step) otherwise, where ``H' = ceil(H / stride)``, ``W' = ceil(W / stride)``.

    Parameters: ``input_conv`` (weight ``(4*hidden, C_in, k, k)`` + bias ``(4*hidden,)``) and ``recurrent_conv``
    (weight ``(4*hidden, hidden, k, k)``, no bias), output channels in ``i, f, c, o`` blocks of ``hidden``.
    A Keras ``kernel (k, k, C_in, 4*hidden)`` maps to ``input_conv.weight`` by ``permute(3, 2, 0, 1)``.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: Activation = "tanh",
        recurrent_activation: Activation = "hard_sigmoid",
        unit_forget_bias: bool = True,
        return_sequences: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.unit_forget_bias = unit_forget_bias
        self.return_sequences = return_sequences
        self._act = _activation(activation, "activation")
        self._gate = _activation(recurrent_activation, "recurrent_activation")
        self.input_conv = Conv2dSame(in_channels, 4 * hidden_channels, kernel_size, stride=stride, bias=True)
        self.recurrent_conv = Conv2dSame(hidden_channels, 4 * hidden_channels, kernel_size, stride=1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras defaults: Glorot-uniform input kernel, orthogonal recurrent kernel, zero bias (forget bias 1)."""
        nn.init.xavier_uniform_(self.input_conv.weight)
        nn.init.orthogonal_(self.recurrent_conv.weight)
        nn.init.zeros_(self.input_conv.bias)
        if self.unit_forget_bias:
            with torch.no_grad():
                self.input_conv.bias[self.hidden_channels : 2 * self.hidden_channels] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input (B, {self.in_channels}, T, H, W), got shape {tuple(x.shape)}"
            )
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B, C, T, H, W) -> (B*T, C, H, W)
        gates_x = self.input_conv(frames)  # (B*T, 4*hid, H', W'), every step at once
        gates_x = gates_x.reshape(b, t, *gates_x.shape[1:])  # -> (B, T, 4*hid, H', W')
        hid = self.hidden_channels
        state_shape = (b, hid, *gates_x.shape[3:])
        h_t = gates_x.new_zeros(state_shape)  # (B, hid, H', W')
        c_t = gates_x.new_zeros(state_shape)
        outputs = []
        for step in range(t):
            z = gates_x[:, step] + self.recurrent_conv(h_t)  # (B, 4*hid, H', W')
            z_i, z_f, z_c, z_o = torch.split(z, hid, dim=1)  # Keras gate order i, f, c, o
            i, f, o = self._gate(z_i), self._gate(z_f), self._gate(z_o)
            c_t = f * c_t + i * self._act(z_c)
            h_t = o * self._act(c_t)
            outputs.append(h_t)
        if not self.return_sequences:
            return h_t
        return torch.stack(outputs, dim=2)  # T x (B, hid, H', W') -> (B, hid, T, H', W')

    def extra_repr(self) -> str:
        return (
            f"activation={self.activation!r}, recurrent_activation={self.recurrent_activation!r}, "
            f"unit_forget_bias={self.unit_forget_bias}, return_sequences={self.return_sequences}"
        )
