"""STATE: an object-cube auto-encoder with convolutional attention over time (Wang et al., ICDM 2022).

The network (``ConvTransformer_recon_correct`` of the original) has two branches of one topology, both fed the RGB
cube of an object (7 frames of 32x32 patches):

- the **raw** branch reconstructs the RGB cube (RGB -> RGB);
- the **flow** branch predicts the optical-flow cube from the RGB cube (RGB -> flow).

Each branch: a per-frame CNN encoder (``DC(3->c0)``, pool, ``DC(c0->c1)``, pool, ``DC(c1->c2)``, where ``DC`` is
two Conv3x3-BN-ReLU), ``n_l`` Conv-Transformer layers on the ``(l, c2, H/4, W/4)`` maps
(:mod:`vadkit.models.layers.conv_attention`), and a per-frame decoder (``ConvT(c2->c2)``, ``DC(c2->c1)``,
``ConvT(c1->c1)``, ``DC(c1->c0)``, ``Conv1x1(c0->C_out)``, linear output), without skip connections.

Configurations (registered with :func:`vadkit.models.register_model`):

============== ================= ===== ====== ===================================================
name           hidden (c0,c1,c2) heads layers  use
============== ================= ===== ====== ===================================================
``state``      (32, 64, 128)     4     3      the paper / Avenue setting (ShanghaiTech: layers=5)
``state_cpu``  (16, 32, 64)      4     2      a narrow model that trains on a few CPU cores
============== ================= ===== ====== ===================================================

Input ``(B, 7*3, 32, 32)`` (frame-major channels: index ``frame * 3 + c``, RGB in [0, 1]) or ``(B, 7, 3, 32, 32)``;
output :class:`StateOutput` with ``raw`` ``(B, 7, 3, 32, 32)`` and ``flow`` ``(B, 7, 2, 32, 32)``.

Training minimises :func:`state_loss`; test-time scoring perturbs each input one signed-gradient step that lowers
its error (:func:`perturb_step`) and measures the errors again (:func:`perturbed_errors`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vadkit.models import register_model
from vadkit.models.layers.conv_attention import ConvTransformerEncoder

__all__ = [
    "STATE",
    "StateBranch",
    "StateOutput",
    "cube_errors",
    "perturb_step",
    "perturbed_errors",
    "state_cpu",
    "state_loss",
    "state_objective",
]


class StateOutput(NamedTuple):
    """The two reconstructions: ``raw`` ``(B, l, 3, H, W)`` and ``flow`` ``(B, l, 2, H, W)``."""

    raw: torch.Tensor
    flow: torch.Tensor


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """``[Conv3x3 -> BatchNorm -> ReLU] x 2`` (the ``DC`` block)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FrameEncoder(nn.Module):
    """Per-image CNN: ``(N, C_in, H, W)`` -> ``(N, hidden[-1], H / 2**(k-1), W / 2**(k-1))`` for ``k`` levels."""

    def __init__(self, in_channels: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        blocks = [double_conv(in_channels, hidden[0])]
        for before, after in zip(hidden[:-1], hidden[1:]):
            blocks.append(nn.Sequential(nn.MaxPool2d(2), double_conv(before, after)))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class FrameDecoder(nn.Module):
    """Per-image decoder mirroring :class:`FrameEncoder`, linear ``Conv1x1`` output, no skip connections."""

    def __init__(self, out_channels: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        blocks = []
        for after, before in zip(hidden[-2::-1], hidden[:0:-1]):  # (c2 -> c1), (c1 -> c0)
            blocks.append(nn.ConvTranspose2d(before, before, 3, stride=2, padding=1, output_padding=1))  # x2 size
            blocks.append(double_conv(before, after))
        blocks.append(nn.Conv2d(hidden[0], out_channels, 1))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class StateBranch(nn.Module):
    """Encoder -> Conv-Transformer over frames -> decoder: clips ``(B, l, C_in, H, W)`` -> ``(B, l, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, hidden: tuple[int, ...], heads: int, layers: int,
                 pos_encoding: str | None, max_frames: int, negative_slope: float, norm_groups: int) -> None:
        super().__init__()
        self.encoder = FrameEncoder(in_channels, hidden)
        self.transformer = ConvTransformerEncoder(hidden[-1], heads, layers, pos_encoding, max_frames,
                                                  negative_slope, norm_groups)
        self.decoder = FrameDecoder(out_channels, hidden)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        b, l, c, h, w = clip.shape
        features = self.encoder(clip.reshape(b * l, c, h, w))  # (B*l, c2, h', w')
        features = features.reshape(b, l, *features.shape[1:])  # (B, l, c2, h', w')
        features = self.transformer(features)  # (B, l, c2, h', w')
        out = self.decoder(features.reshape(b * l, *features.shape[2:]))  # (B*l, C_out, H, W)
        return out.reshape(b, l, -1, h, w)  # (B, l, C_out, H, W)


@register_model("state")
class STATE(nn.Module):
    """STATE's two-branch cube auto-encoder (RGB -> RGB and RGB -> flow).

    Args:
        num_frames: frames per cube ``l`` (7 in STATE).
        in_channels: channels of an input frame (3, RGB).
        flow_channels: channels of a flow frame (2).
        hidden: encoder widths per level; the attention runs at the last (paper: ``(32, 64, 128)``).
        heads: attention heads (``hidden[-1]`` must divide by it; paper 4, depth 32 each).
        layers: Conv-Transformer layers ``n_l`` (paper 3 for Avenue, 5 for ShanghaiTech).
        pos_encoding: ``"learned"`` (paper), ``"sine"`` or ``"none"``.
        max_frames: frames the positional encoding covers (paper 10).
        negative_slope: LeakyReLU slope inside the attention layers.
        norm_groups: GroupNorm groups after each layer.

    Input ``(B, l*3, H, W)`` (frame-major) or ``(B, l, 3, H, W)``, ``H`` and ``W`` divisible by ``2**(len(hidden)-1)``.
    """

    def __init__(self, *, num_frames: int = 7, in_channels: int = 3, flow_channels: int = 2,
                 hidden: tuple[int, ...] = (32, 64, 128), heads: int = 4, layers: int = 3,
                 pos_encoding: str | None = "learned", max_frames: int = 10, negative_slope: float = 0.2,
                 norm_groups: int = 4) -> None:
        super().__init__()
        hidden = tuple(int(c) for c in hidden)
        if not hidden:
            raise ValueError("hidden must list at least one channel width")
        if num_frames > max_frames:
            raise ValueError(f"num_frames ({num_frames}) exceeds max_frames ({max_frames}) of the positional encoding")
        self.num_frames, self.in_channels, self.flow_channels = num_frames, in_channels, flow_channels
        self.hidden = hidden
        branch = dict(hidden=hidden, heads=heads, layers=layers, pos_encoding=pos_encoding, max_frames=max_frames,
                      negative_slope=negative_slope, norm_groups=norm_groups)
        self.raw_branch = StateBranch(in_channels, in_channels, **branch)
        self.flow_branch = StateBranch(in_channels, flow_channels, **branch)

    def as_clip(self, x: torch.Tensor) -> torch.Tensor:
        """Bring an input to ``(B, l, C, H, W)``; ``(B, l*C, H, W)`` is read frame-major."""
        l, c = self.num_frames, self.in_channels
        if x.ndim == 4 and x.shape[1] == l * c:
            x = x.reshape(x.shape[0], l, c, *x.shape[2:])  # (B, l*C, H, W) -> (B, l, C, H, W)
        if x.ndim != 5 or x.shape[1:3] != (l, c):
            raise ValueError(f"expected input (B, {l * c}, H, W) or (B, {l}, {c}, H, W), got {tuple(x.shape)}")
        step = 2 ** (len(self.hidden) - 1)
        if x.shape[-1] % step or x.shape[-2] % step:
            raise ValueError(f"patch size must be divisible by {step}, got {tuple(x.shape[-2:])}")
        return x

    def forward(self, x: torch.Tensor) -> StateOutput:
        clip = self.as_clip(x)  # (B, l, 3, H, W)
        return StateOutput(raw=self.raw_branch(clip), flow=self.flow_branch(clip))


@register_model("state_cpu")
def state_cpu(**overrides) -> STATE:
    """A narrow STATE for CPU training: widths (16, 32, 64), 4 heads of 16, 2 layers (other arguments as STATE)."""
    config = dict(hidden=(16, 32, 64), heads=4, layers=2)
    config.update(overrides)
    return STATE(**config)


# ---------------------------------------------------------------------------------------------------------------
# Loss, errors and test-time perturbation
# ---------------------------------------------------------------------------------------------------------------

def _as_clip(tensor: torch.Tensor, like: torch.Tensor, name: str) -> torch.Tensor:
    """Reshape a frame-major ``(B, l*C, H, W)`` target to the output's ``(B, l, C, H, W)``."""
    if tensor.shape == like.shape:
        return tensor
    if tensor.numel() == like.numel() and tensor.shape[0] == like.shape[0]:
        return tensor.reshape(like.shape)  # (B, l*C, H, W) -> (B, l, C, H, W), frame-major
    raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(like.shape)} "
                     "or its frame-major flat form")


def state_objective(output: StateOutput, raw: torch.Tensor, flow: torch.Tensor, raw_weight: float = 1.0,
                    flow_weight: float = 1.0) -> torch.Tensor:
    """``raw_weight * MSE(raw, out.raw) + flow_weight * MSE(flow, out.flow)``, element means, targets as given.

    The targets are *not* detached: used by :func:`perturb_step`, where the raw target is the input itself.
    """
    raw = _as_clip(raw, output.raw, "raw")
    flow = _as_clip(flow, output.flow, "flow")
    return raw_weight * F.mse_loss(output.raw, raw) + flow_weight * F.mse_loss(output.flow, flow)


def state_loss(output: StateOutput, raw: torch.Tensor, flow: torch.Tensor, raw_weight: float = 1.0,
               flow_weight: float = 1.0) -> torch.Tensor:
    """Training loss ``λ_r * MSE(x, x̂) + λ_o * MSE(flow, floŵ)`` (element means, detached targets).

    Args:
        output: the model's :class:`StateOutput` for the input ``raw``.
        raw: the input cube ``(B, 21, 32, 32)`` or ``(B, 7, 3, 32, 32)`` (its own reconstruction target).
        flow: the flow cube ``(B, 14, 32, 32)`` or ``(B, 7, 2, 32, 32)``.
        raw_weight, flow_weight: ``λ_r`` and ``λ_o`` (paper: 1 and 1).
    """
    return state_objective(output, raw.detach(), flow.detach(), raw_weight, flow_weight)


def cube_errors(output: StateOutput, raw: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cube summed squared errors ``(E_raw, E_flow)``, each ``(B,)``: ``Σ_{l,c,h,w} (target - output)²``."""
    raw = _as_clip(raw, output.raw, "raw")
    flow = _as_clip(flow, output.flow, "flow")
    e_raw = (raw - output.raw).pow(2).flatten(1).sum(1)  # (B,)
    e_flow = (flow - output.flow).pow(2).flatten(1).sum(1)  # (B,)
    return e_raw, e_flow


def perturb_step(model: nn.Module, raw: torch.Tensor, flow: torch.Tensor, eps: float, raw_weight: float = 1.0,
                 flow_weight: float = 1.0) -> torch.Tensor:
    """One signed-gradient step on the input that *lowers* its error: ``x' = x - eps * sign(∇_x J(x))``.

    ``J(x) = raw_weight * MSE(x, f_raw(x)) + flow_weight * MSE(flow, f_flow(x))``; the raw target is ``x`` itself and
    keeps its gradient (the identity path counts), as in STATE. No clipping to [0, 1]. Parameter gradients are
    neither computed nor touched; the model's mode (train/eval) is left as it is (score in eval mode).

    Args:
        model: a :class:`STATE` (anything returning a :class:`StateOutput`).
        raw: input cubes ``(B, 21, 32, 32)`` or ``(B, 7, 3, 32, 32)``.
        flow: their flow cubes ``(B, 14, 32, 32)`` or ``(B, 7, 2, 32, 32)``.
        eps: step size (paper: 0.002 Avenue, 0.005 ShanghaiTech, default 0.01).

    Returns:
        the perturbed input, same shape as ``raw``, detached.
    """
    with torch.enable_grad():
        x = raw.detach().clone().requires_grad_(True)
        objective = state_objective(model(x), x, flow.detach(), raw_weight, flow_weight)
        (gradient,) = torch.autograd.grad(objective, x)
    return (x - eps * gradient.sign()).detach()


def perturbed_errors(model: nn.Module, raw: torch.Tensor, flow: torch.Tensor, eps: float,
                     raw_weight: float = 1.0, flow_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """STATE's test-time errors: perturb with :func:`perturb_step`, run again, ``(E_raw, E_flow)`` each ``(B,)``.

    The raw error is measured against the *perturbed* input (its own target); the flow error against ``flow``.
    ``eps=0`` gives the plain, unperturbed errors.
    """
    perturbed = perturb_step(model, raw, flow, eps, raw_weight, flow_weight) if eps else raw.detach()
    with torch.no_grad():
        return cube_errors(model(perturbed), perturbed, flow)
