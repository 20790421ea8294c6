"""Convolutional LSTM (Shi et al., 2015): an LSTM whose gates are 2-D convolutions over feature maps.

One convolution over the concatenation ``[x_t ; h_{t-1}]`` produces the four gates, split in the order
**input, forget, output, cell** (the order AED uses, seed-systems §2.3):

    i, f, o = sigmoid(.)      g = tanh(.)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Spatial size is kept ("same" padding, odd kernels only); initial states are zeros unless given.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, Tensor]
"""``(h, c)``, each ``(B, hidden_channels, H, W)``."""


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step.

    Args:
        in_channels: channels of the input map ``x_t``.
        hidden_channels: channels of ``h`` and ``c``.
        kernel_size: odd square kernel of the gate convolution.
        bias: whether the gate convolution has a bias.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, bias: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the spatial size, got {kernel_size}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(
            in_channels + hidden_channels, 4 * hidden_channels, kernel_size, padding=kernel_size // 2, bias=bias
        )

    def initial_state(self, x: Tensor) -> State:
        """Zero ``(h, c)`` for an input map ``x`` of shape ``(B, in_channels, H, W)``."""
        batch, _, height, width = x.shape
        zeros = x.new_zeros(batch, self.hidden_channels, height, width)
        return zeros, zeros.clone()

    def forward(self, x: Tensor, state: State | None = None) -> State:
        """Args: ``x`` ``(B, in_channels, H, W)``; ``state`` ``(h, c)`` or ``None`` for zeros.

        Returns the new ``(h, c)``, each ``(B, hidden_channels, H, W)``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        h, c = self.initial_state(x) if state is None else state
        gates = self.gates(torch.cat([x, h], dim=1))  # (B, 4*hid, H, W)
        i, f, o, g = gates.chunk(4, dim=1)  # each (B, hid, H, W), order: in, forget, out, cell
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM layers unrolled over time, batch-first.

    Layer ``l`` takes the hidden maps of layer ``l-1`` at every step (layer 0 takes the input).

    Args:
        in_channels: channels of the input maps.
        hidden_channels: channels of every layer's hidden state.
        num_layers: number of stacked cells.
        kernel_size: odd kernel of every gate convolution.
        bias: gate convolution bias.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_layers: int = 1,
        kernel_size: int = 3,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.cells = nn.ModuleList(
            ConvLSTMCell(in_channels if layer == 0 else hidden_channels, hidden_channels, kernel_size, bias)
            for layer in range(num_layers)
        )

    def forward(self, x: Tensor, states: list[State] | None = None) -> tuple[Tensor, list[State]]:
        """Args: ``x`` ``(B, T, C, H, W)``; ``states`` one ``(h, c)`` per layer, or ``None`` for zeros.

        Returns ``(outputs, last_states)``: the last layer's hidden maps at every step ``(B, T, hid, H, W)``
        and each layer's final ``(h, c)``.
        """
        if x.dim() != 5:
            raise ValueError(f"expected input (B, T, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] == 0:
            raise ValueError("expected at least one time step, got T=0")
        if states is not None and len(states) != len(self.cells):
            raise ValueError(f"expected {len(self.cells)} initial states (one per layer), got {len(states)}")
        layer_input = x
        last_states: list[State] = []
        for layer, cell in enumerate(self.cells):
            state = None if states is None else states[layer]
            outputs = []
            for t in range(layer_input.shape[1]):
                state = cell(layer_input[:, t], state)
                outputs.append(state[0])
            layer_input = torch.stack(outputs, dim=1)  # (B, T, hid, H, W)
            last_states.append(state)
        return layer_input, last_states
