"""DeepMind's Inception-v1 I3D (Carreira & Zisserman, CVPR 2017) in PyTorch, numerically faithful to the original.

What makes it match TensorFlow / Flax exactly:

* **"SAME" padding** as TensorFlow computes it: for an input of length ``n``, kernel ``k`` and stride ``s`` the
  output has ``ceil(n / s)`` steps and the total padding ``max((ceil(n/s) - 1) * s + k - n, 0)`` is split with
  the smaller half *before* (so strided layers pad asymmetrically, e.g. ``n=224, k=7, s=2`` pads ``(2, 3)``).
* **Max-pools pad with -inf**, never with zeros.
* **BatchNorm without scale** (a bias only), epsilon 1e-3.
* **DeepMind's head**: average pool ``(2, 7, 7)`` with stride 1 over Mixed_5c, a 1x1x1 convolution with bias,
  then the mean over time.

Module names follow piergiaj's ``pytorch-i3d`` (``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.running_mean``,
``logits.conv3d.bias``), so its checkpoints load after folding away their BatchNorm scale
(see ``vadkit.features.weights``; :func:`vadkit.features.i3d.load_i3d` builds one with pretrained weights).

Input: float ``(B, C, T, H, W)``, RGB in [-1, 1] (``C = 3``) or two flow channels (``C = 2``); 16 x 224 x 224
is the usual snippet. Mixed_5c is ``(B, 1024, ceil(T/8), ceil(H/32), ceil(W/32))``.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from vadkit.models import register_model
from vadkit.models.layers.tf_same import same_padding

Triple = tuple[int, int, int]


# --------------------------------------------------------------------------------------------------- padding


def _same_pads(x: torch.Tensor, kernel: Triple, stride: Triple) -> list[tuple[int, int]]:
    """``(before, after)`` for the T, H, W axes of ``x`` ``(B, C, T, H, W)``."""
    return [same_padding(n, k, s) for n, k, s in zip(x.shape[2:], kernel, stride)]


def _fpad_arg(pads: list[tuple[int, int]]) -> list[int]:
    """``[(t0, t1), (h0, h1), (w0, w1)]`` -> ``F.pad`` order ``[w0, w1, h0, h1, t0, t1]``."""
    return [p for before_after in reversed(pads) for p in before_after]


class MaxPool3dSame(nn.Module):
    """Max-pool with TensorFlow "SAME" padding, the padding acting as -inf.

    No copy is made: symmetric padding goes to ``max_pool3d`` (which pads with -inf), and the asymmetric case
    ``after = before + 1`` of a stride ``s >= 2`` with ``k >= s`` equals ``padding=before, ceil_mode=True``:
    both start windows at ``i * s - before`` for ``i < ceil(n/s)``, and ceil mode treats the part of the last
    window past the end as -inf. Any other case falls back to an explicit ``F.pad`` with -inf.
    """

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = _same_pads(x, self.kernel, self.stride)
        symmetric = all(b == a for b, a in pads)
        ceil_trick = all(b == a or (s >= 2 and k >= s) for (b, a), k, s in zip(pads, self.kernel, self.stride))
        if symmetric or ceil_trick:
            before = tuple(b for b, _ in pads)
            return F.max_pool3d(x, self.kernel, self.stride, padding=before, ceil_mode=not symmetric)
        x = F.pad(x, _fpad_arg(pads), value=float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding=SAME(-inf)"


# --------------------------------------------------------------------------------------------------- layers


class BatchNorm3dNoScale(nn.Module):
    """Sonnet/Flax BatchNorm without scale: ``(x - running_mean) / sqrt(running_var + eps) + bias``.

    ``momentum`` is PyTorch's (the weight of the new batch), 0.001 = Flax/Sonnet decay 0.999.
    """

    def __init__(self, channels: int, *, eps: float = 1e-3, momentum: float = 1e-3) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, None, self.bias, self.training, self.momentum, self.eps
        )


class Unit3D(nn.Module):
    """Conv3d with TF "SAME" padding, then optional bias-only BatchNorm, then optional ReLU.

    Stride-1 convolutions with odd kernels pad symmetrically inside the convolution (no copy); only asymmetric
    cases (the strided stem) pad the input with ``F.pad`` first.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        batch_norm: bool = True,
        bias: bool = False,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = BatchNorm3dNoScale(out_channels) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = _same_pads(x, self.kernel, self.stride)
        if all(b == a for b, a in pads):
            padding = tuple(b for b, _ in pads)
        else:
            x = F.pad(x, _fpad_arg(pads))
            padding = (0, 0, 0)
        x = F.conv3d(x, self.conv3d.weight, self.conv3d.bias, self.stride, padding)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.relu else x

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Fold the (eval-mode) BatchNorm into the convolution: ``W' = W / s``, ``b' = bias - mean / s``,
        ``s = sqrt(var + eps)``. Same function up to float rounding, one pass over memory fewer."""
        if self.bn is None:
            return
        inv_std = torch.rsqrt(self.bn.running_var + self.bn.eps)  # (out,)
        weight = self.conv3d.weight * inv_std.view(-1, 1, 1, 1, 1)  # (out, in, kt, kh, kw)
        bias = self.bn.bias - self.bn.running_mean * inv_std
        if self.conv3d.bias is not None:
            bias = bias + self.conv3d.bias * inv_std
        self.conv3d.weight = nn.Parameter(weight)
        self.conv3d.bias = nn.Parameter(bias)
        self.bn = None


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool 3x3->1x1.

    ``widths = (b0, b1a, b1b, b2a, b2b, b3b)``; output channels ``b0 + b1b + b2b + b3b``.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.b0 = Unit3D(in_channels, b0)
        self.b1a = Unit3D(in_channels, b1a)
        self.b1b = Unit3D(b1a, b1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, b2a)
        self.b2b = Unit3D(b2a, b2b, kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, b3b)
        self.out_channels = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


# The network after the stem, as data: ("pool", kernel, stride) or ("inception", widths).
_BODY: tuple[tuple[str, str, tuple], ...] = (
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "inception", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "inception", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "inception", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "inception", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "inception", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "inception", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "inception", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "inception", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "inception", (384, 192, 384, 48, 128, 128)),
)

FEATURE_DIM = 1024


# --------------------------------------------------------------------------------------------------- network


@register_model("i3d")
class I3D(nn.Module):
    """Inception-v1 I3D: ``forward_features`` gives 1024-d snippet features, ``forward`` Kinetics logits.

    Args:
        num_classes: width of the logits layer (400 for Kinetics-400).
        in_channels: 3 for RGB, 2 for optical flow.
        dropout: dropout before the logits layer (training only; DeepMind used keep-prob 0.5 there).

    Attributes set by ``from_pretrained``: ``weights_path`` (str) and ``weights_sha256`` (hex), for manifests.
    """

    ENDPOINTS = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3") + tuple(n for n, *_ in _BODY)

    def __init__(self, *, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        self.weights_path: str | None = None
        self.weights_sha256: str | None = None

        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        channels = 192
        for name, kind, spec in _BODY:
            if kind == "pool":
                self.add_module(name, MaxPool3dSame(*spec))
            else:
                block = InceptionBlock(channels, spec)
                self.add_module(name, block)
                channels = block.out_channels
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(channels, num_classes, batch_norm=False, bias=True, relu=False)

    # ------------------------------------------------------------------------------------------- forward

    def _check_clip(self, clip: torch.Tensor) -> None:
        if clip.ndim != 5 or clip.shape[1] != self.in_channels:
            raise ValueError(
                f"I3D expects a clip (B, {self.in_channels}, T, H, W), found shape {tuple(clip.shape)}"
            )

    def endpoints(self, clip: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(name, activation)`` after every stage, from ``Conv3d_1a_7x7`` to ``Mixed_5c``."""
        self._check_clip(clip)
        x = clip
        for name in self.ENDPOINTS:
            x = getattr(self, name)(x)
            yield name, x

    def feature_map(self, clip: torch.Tensor) -> torch.Tensor:
        """Mixed_5c: ``(B, C, T, H, W)`` -> ``(B, 1024, ceil(T/8), ceil(H/32), ceil(W/32))``."""
        x = clip
        for _, x in self.endpoints(clip):
            pass
        return x

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """Snippet features: Mixed_5c averaged over time and space, ``(B, C, T, H, W)`` -> ``(B, 1024)``.

        For a 16 x 224 x 224 clip this equals DeepMind's ``(2, 7, 7)`` average pool before the logits.
        """
        return self.feature_map(clip).mean(dim=(2, 3, 4))

    def forward_head(self, mixed_5c: torch.Tensor) -> torch.Tensor:
        """DeepMind's head: ``(B, 1024, t, h, w)`` with ``t >= 2, h >= 7, w >= 7`` -> logits ``(B, num_classes)``."""
        t, h, w = mixed_5c.shape[2:]
        if t < 2 or h < 7 or w < 7:
            raise ValueError(
                f"the I3D logits head pools (2, 7, 7) over Mixed_5c, found Mixed_5c of (t, h, w) = {(t, h, w)}; "
                "use clips of at least 9 frames and 193 x 193 pixels, or forward_features"
            )
        x = F.avg_pool3d(mixed_5c, (2, 7, 7), stride=1)  # (B, 1024, t-1, h-6, w-6)
        x = self.logits(self.dropout(x))  # (B, num_classes, t-1, h-6, w-6)
        return x.mean(dim=(2, 3, 4))  # (B, num_classes); DeepMind squeezes h, w (1 at 224) and averages time

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for clips ``(B, C, T, H, W)``."""
        return self.forward_head(self.feature_map(clip))

    def optimize_for_inference(self) -> "I3D":
        """Make CPU inference faster, in place: fold BatchNorm into the convolutions and store the weights
        channels-last (``torch.channels_last_3d``), which lets oneDNN skip layout conversions. Features stay
        equal to the plain model's up to float rounding (relative error ~1e-6). The model is put in eval mode
        and can no longer be trained or saved in the standard layout. Returns ``self``.
        """
        self.eval()
        for module in self.modules():
            if isinstance(module, Unit3D):
                module.fold_batchnorm()
        return self.to(memory_format=torch.channels_last_3d)

    def load_converted(self, state: dict[str, torch.Tensor]) -> None:
        """Load a vadkit-layout state dict, naming every missing, unexpected or mis-shaped key."""
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong = [f"{k}: expected {tuple(own[k].shape)}, found {tuple(state[k].shape)}"
                 for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(
                f"I3D weights do not fit: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}, wrong shape {wrong[:5]}"
            )
        self.load_state_dict(state)
