"""Convolutional self-attention across the frames of a short clip (the STATE "Conv-Transformer").

Every frame of a clip is a feature map ``(C, H, W)``. Attention runs between *frames*, separately at every pixel:
the weight that query frame ``i`` gives to key frame ``j`` is an ``(H, W)`` map computed by a 3x3 convolution of
the pair ``[Q_i ; K_j]``, normalised with a softmax over ``j``. Queries, keys and values are per-frame 3x3
convolutions, so the layer keeps the spatial layout and mixes only time.

Public API:

- :class:`LearnedFramePositions`, :class:`SineFramePositions` - one vector per frame index, ``(l, d)``, added to
  queries and keys (broadcast over space); :func:`frame_positions` builds one by name (``"learned"``, ``"sine"``).
- :class:`ConvAttentionHead` - one head on ``(B, l, d, H, W)``; returns the attended values and, on request, the
  attention weights ``(B, l_query, l_key, H, W)`` (they sum to 1 over ``l_key``).
- :class:`ConvTransformerLayer` - ``heads`` heads on channel groups, residual, per-frame feed-forward, GroupNorm.
- :class:`ConvTransformerEncoder` - ``layers`` independent layers sharing one positional encoding.

Difference from the published code (same function, fewer operations, no dead weights): the pair score
``Conv3x3_{2d->1}([Q_i ; K_j])`` is linear in the concatenation, so it equals ``conv_q(Q_i) + conv_k(K_j) + b``
with the two halves of the same weight. It is computed that way, ``2l`` convolutions instead of ``l**2``; the
parameter (``score.weight``, shape ``(1, 2d, 3, 3)``) is the one of the original form. The unused template layer
and the unused per-head feed-forward of the original are not created.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvAttentionHead",
    "ConvTransformerEncoder",
    "ConvTransformerLayer",
    "LearnedFramePositions",
    "SineFramePositions",
    "frame_positions",
]


class LearnedFramePositions(nn.Module):
    """A learned vector per frame index (``nn.Embedding(max_frames, dim)``); ``forward(l) -> (l, dim)``."""

    def __init__(self, dim: int, max_frames: int = 10) -> None:
        super().__init__()
        self.max_frames = max_frames
        self.embedding = nn.Embedding(max_frames, dim)

    def forward(self, num_frames: int) -> torch.Tensor:
        _check_frames(num_frames, self.max_frames)
        index = torch.arange(num_frames, device=self.embedding.weight.device)
        return self.embedding(index)  # (l, dim)


class SineFramePositions(nn.Module):
    """Fixed sinusoidal frame positions, as STATE's ``'sine'`` option; ``forward(l) -> (l, dim)``.

    ``PE[p] = 0.5 * [sin(p * w_k) for even k ; cos(p * w_k) for odd k]`` with ``w_k = 10000 ** (-2 * (k // 2) / dim)``:
    the sines of the even dimensions first, then the cosines of the odd ones (concatenated, not interleaved).
    """

    def __init__(self, dim: int, max_frames: int = 10) -> None:
        super().__init__()
        self.max_frames = max_frames
        position = torch.arange(max_frames, dtype=torch.float32)[:, None]  # (max_frames, 1)
        k = torch.arange(dim, dtype=torch.float32)
        omega = torch.pow(10000.0, -2.0 * torch.div(k, 2, rounding_mode="floor") / dim)  # (dim,)
        angle = position * omega  # (max_frames, dim)
        table = 0.5 * torch.cat([torch.sin(angle[:, 0::2]), torch.cos(angle[:, 1::2])], dim=1)  # (max_frames, dim)
        self.register_buffer("table", table, persistent=False)

    def forward(self, num_frames: int) -> torch.Tensor:
        _check_frames(num_frames, self.max_frames)
        return self.table[:num_frames]  # (l, dim)


def frame_positions(kind: str | None, dim: int, max_frames: int = 10) -> nn.Module | None:
    """Build a frame positional encoding by name: ``"learned"``, ``"sine"`` or ``None`` (no positions)."""
    builders = {"learned": LearnedFramePositions, "sine": SineFramePositions}
    if kind is None or kind == "none":
        return None
    if kind not in builders:
        raise ValueError(f"pos_encoding must be one of 'learned', 'sine', 'none', got {kind!r}")
    return builders[kind](dim, max_frames)


def _check_frames(num_frames: int, max_frames: int) -> None:
    if not 1 <= num_frames <= max_frames:
        raise ValueError(f"the positional encoding covers 1..{max_frames} frames, got a clip of {num_frames}")


class ConvAttentionHead(nn.Module):
    """One head of convolutional attention over frames.

    Args:
        channels: head depth ``d`` (channels of its input and output).
        negative_slope: slope of the LeakyReLU after the Q, K/V and score convolutions.

    ``forward(x, positions)`` with ``x`` ``(B, l, d, H, W)`` and ``positions`` ``(l, d)`` or ``None`` returns
    ``(out, weights)``: ``out`` ``(B, l, d, H, W)`` and ``weights`` ``(B, l, l, H, W)`` (query frame, key frame).
    Keys and values share one convolution, as in STATE; positions are added to queries and keys, not values.
    """

    def __init__(self, channels: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.channels = channels
        self.negative_slope = negative_slope
        self.query = nn.Conv2d(channels, channels, 3, padding=1)
        self.key_value = nn.Conv2d(channels, channels, 3, padding=1)
        self.score = nn.Conv2d(2 * channels, 1, 3, padding=1)  # weight halves: query part, key part

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 5 or x.shape[2] != self.channels:
            raise ValueError(f"expected (B, l, {self.channels}, H, W), got shape {tuple(x.shape)}")
        b, l, d, h, w = x.shape
        frames = x.reshape(b * l, d, h, w)  # (B*l, d, H, W)
        query = F.leaky_relu(self.query(frames), self.negative_slope)
        key_value = F.leaky_relu(self.key_value(frames), self.negative_slope)
        key = key_value
        if positions is not None:
            pos = positions.repeat(b, 1)[:, :, None, None]  # (B*l, d, 1, 1), frame index = row % l
            query = query + pos
            key = key + pos
        weight_q, weight_k = self.score.weight[:, :d], self.score.weight[:, d:]  # (1, d, 3, 3) each
        score_q = F.conv2d(query, weight_q, self.score.bias, padding=1).reshape(b, l, 1, h, w)  # query frame i
        score_k = F.conv2d(key, weight_k, None, padding=1).reshape(b, 1, l, h, w)  # key frame j
        logits = F.leaky_relu(score_q + score_k, self.negative_slope)  # (B, l_q, l_k, H, W)
        weights = torch.softmax(logits, dim=2)  # sums to 1 over key frames, per pixel
        values = key_value.reshape(b, l, d, h, w)  # (B, l_k, d, H, W)
        out = torch.einsum("bijhw,bjdhw->bidhw", weights, values)  # (B, l_q, d, H, W)
        return out, weights


class ConvTransformerLayer(nn.Module):
    """``heads`` convolutional attention heads, residual, per-frame feed-forward and GroupNorm.

    ``Z = concat_h(head_h(X_h)) + X``; ``Y = GroupNorm(Z + LReLU(Conv3x3(Z)))``. Input and output ``(B, l, C, H, W)``.
    """

    def __init__(self, channels: int = 128, heads: int = 4, negative_slope: float = 0.2, norm_groups: int = 4,
                 residual: bool = True) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        if channels % norm_groups:
            raise ValueError(f"channels ({channels}) must be divisible by norm_groups ({norm_groups})")
        self.channels, self.num_heads, self.residual = channels, heads, residual
        self.negative_slope = negative_slope
        self.heads = nn.ModuleList(ConvAttentionHead(channels // heads, negative_slope) for _ in range(heads))
        self.feed_forward = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.GroupNorm(norm_groups, channels)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None,
                return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``x`` ``(B, l, C, H, W)`` -> ``(B, l, C, H, W)`` (and the per-head weights ``(B, l, l, H, W)``)."""
        if x.ndim != 5 or x.shape[2] != self.channels:
            raise ValueError(f"expected (B, l, {self.channels}, H, W), got shape {tuple(x.shape)}")
        b, l, c, h, w = x.shape
        parts = x.chunk(self.num_heads, dim=2)  # heads x (B, l, C/heads, H, W)
        outputs, weights = zip(*(head(part, positions) for head, part in zip(self.heads, parts)))
        z = torch.cat(outputs, dim=2)  # (B, l, C, H, W)
        if self.residual:
            z = z + x
        z = z.reshape(b * l, c, h, w)  # (B*l, C, H, W): per-frame feed-forward and norm
        y = self.norm(z + F.leaky_relu(self.feed_forward(z), self.negative_slope))
        y = y.reshape(b, l, c, h, w)  # (B, l, C, H, W)
        return (y, list(weights)) if return_attention else y


class ConvTransformerEncoder(nn.Module):
    """``layers`` independent :class:`ConvTransformerLayer` s sharing one frame positional encoding.

    Args:
        channels: feature channels ``C`` (split into ``heads`` heads of ``C // heads``).
        heads, layers: number of heads per layer and of layers (STATE: 4 heads, 3 layers on Avenue, 5 on SHT).
        pos_encoding: ``"learned"`` (STATE default), ``"sine"`` or ``"none"``.
        max_frames: longest clip the positional encoding covers.
    """

    def __init__(self, channels: int = 128, heads: int = 4, layers: int = 3, pos_encoding: str | None = "learned",
                 max_frames: int = 10, negative_slope: float = 0.2, norm_groups: int = 4,
                 residual: bool = True) -> None:
        super().__init__()
        if layers < 0:
            raise ValueError(f"layers must be >= 0, got {layers}")
        self.positions = frame_positions(pos_encoding, channels // heads, max_frames)
        self.layers = nn.ModuleList(
            ConvTransformerLayer(channels, heads, negative_slope, norm_groups, residual) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, l, C, H, W)`` -> ``(B, l, C, H, W)``."""
        positions = None if self.positions is None else self.positions(x.shape[1])  # (l, C/heads)
        for layer in self.layers:
            x = layer(x, positions)
        return x

    def attention_maps(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """The attention weights of every layer and head, each ``(B, l, l, H, W)``, for inspection and tests."""
        positions = None if self.positions is None else self.positions(x.shape[1])
        maps = []
        for layer in self.layers:
            x, weights = layer(x, positions, return_attention=True)
            maps.append(weights)
        return maps

