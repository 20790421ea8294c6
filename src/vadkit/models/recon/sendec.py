"""sEnDec: the 3D-CNN + ConvLSTM reconstruction autoencoder of Ul Amin et al. (2024), ported from Keras.

Input ``(B, C_in, T, H, W)`` in [0, 1], output the sigmoid reconstruction ``(B, C_out, T, H, W)``; ``H`` and ``W``
must be divisible by 16 (four halvings). The network is convolutional in time, so any clip length ``T`` works
(the released checkpoint was trained with ``T = 1``, the authors' notebook uses ``T = 4``).

Architecture (docs/seed-systems.md §4.2), every convolution with TF "same" padding:

- ``stem``: Conv3D (1,3,3), 16, ReLU -> ``x0`` (full resolution).
- three levels ``l = 1..3``, each a micro-autoencoder followed by a stride-2 reduction:
  ``half_l = ReLU(Conv (1,3,3)/(1,2,2), 32)(x_{l-1})``;
  ``full_l = ReLU(Conv (1,3,3), 16)(BN(x_{l-1} ++ CT(half_l)))``;
  ``x_l = ReLU(Conv (1,3,3)/(1,2,2), 32)(full_l)``.
- bottleneck: Keras ConvLSTM2D on ``x_3``: 16 filters, 3x3, input stride 2, ReLU, hard-sigmoid gates -> 1/16 res.
- decoder stages at 1/8, 1/4, 1/2, 1: ``y = ReLU(BN(Conv (1,3,3), 32)(CT(y) ++ x_l)))``, then ``y ++ half_l``
  (``l >= 1``).
- head: Dropout, Conv3D (2,3,3), ``C_out``, sigmoid (anti-causal in time: ``out[t]`` sees frames ``t, t+1``).

``CT`` is a Conv3DTranspose (2,3,3)/(1,2,2) with 16 filters and Keras "same" cropping (causal in time:
``out[t]`` sees ``t, t-1``); ``++`` is channel concatenation. BatchNorm: eps 1e-3, momentum 0.01 (Keras 0.99).

Deviation from the released checkpoint (documented in docs/seed-systems.md §4.2): ``out_channels`` defaults to
``in_channels`` so that an RGB clip is reconstructed as RGB; the checkpoint maps RGB to one channel, and
:meth:`SEnDec.from_keras_h5` reproduces that by reading the channel counts from the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vadkit.models import register_model
from vadkit.models.layers.keras_convlstm import KerasConvLSTM2d
from vadkit.models.layers.tf_same import Conv3dSame, ConvTranspose3dSame

__all__ = ["SEnDec", "MicroAutoencoder", "DecoderStage"]

WIDE = 32  # channels of the strided convolutions and decoder convolutions
NARROW = 16  # channels of the stem, the micro-AE fusion convolutions, the transposed convolutions and the ConvLSTM
LEVELS = 3  # micro-autoencoder levels; with the ConvLSTM's stride this makes 4 halvings
SPATIAL = (1, 3, 3)
HALVE = (1, 2, 2)
UP_KERNEL = (2, 3, 3)
HEAD_KERNEL = (2, 3, 3)
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch convention; Keras momentum 0.99


def _batch_norm(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _upsample(in_channels: int) -> ConvTranspose3dSame:
    return ConvTranspose3dSame(in_channels, NARROW, UP_KERNEL, stride=HALVE)


class MicroAutoencoder(nn.Module):
    """The sEnDec micro-autoencoder block.

    ``x: (B, C, T, H, W)`` -> ``(half, full)`` with ``half: (B, 32, T, H/2, W/2)`` (ReLU of a strided conv) and
    ``full: (B, 16, T, H, W) = ReLU(fuse(BN(x ++ up(half))))``.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.down = Conv3dSame(in_channels, WIDE, SPATIAL, stride=HALVE)
        self.up = _upsample(WIDE)
        self.norm = _batch_norm(in_channels + NARROW)
        self.fuse = Conv3dSame(in_channels + NARROW, NARROW, SPATIAL)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = F.relu(self.down(x))  # (B, 32, T, H/2, W/2)
        full = torch.cat([x, self.up(half)], dim=1)  # (B, C + 16, T, H, W)
        full = F.relu(self.fuse(self.norm(full)))  # (B, 16, T, H, W)
        return half, full


class DecoderStage(nn.Module):
    """One upsampling stage: ``(B, C_in, T, h, w)`` + skip ``(B, C_skip, T, 2h, 2w)`` -> ``(B, 32, T, 2h, 2w)``.

    ``y = ReLU(BN(fuse(up(x) ++ skip)))``; when ``extra`` is given, ``y ++ extra`` (``(B, 32 + C_extra, ...)``).
    """

    def __init__(self, in_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.up = _upsample(in_channels)
        self.fuse = Conv3dSame(NARROW + skip_channels, WIDE, SPATIAL)
        self.norm = _batch_norm(WIDE)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        y = torch.cat([self.up(x), skip], dim=1)  # (B, 16 + C_skip, T, 2h, 2w)
        y = F.relu(self.norm(self.fuse(y)))  # (B, 32, T, 2h, 2w)
        if extra is not None:
            y = torch.cat([y, extra], dim=1)  # (B, 32 + C_extra, T, 2h, 2w)
        return y


@register_model("sendec")
class SEnDec(nn.Module):
    """sEnDec reconstruction autoencoder. ``(B, in_channels, T, H, W)`` -> ``(B, out_channels, T, H, W)`` in (0, 1).

    Args:
        in_channels: input channels (3 for RGB, 1 for grayscale).
        out_channels: reconstructed channels; ``None`` means ``in_channels`` (the released checkpoint has 1).
        clip_length: the expected ``T``; ``None`` accepts any ``T`` (the network is convolutional in time).
        dropout: dropout rate before the last convolution (paper 0.5; notebook and checkpoint 0.3).

    ``H`` and ``W`` must be divisible by 16. 223,265 trainable parameters for ``(3 in, 1 out)``, 224,419 for
    ``(3, 3)``.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int | None = None,
        clip_length: int | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if out_channels is not None and out_channels < 1:
            raise ValueError(f"out_channels must be >= 1 or None, got {out_channels}")
        if clip_length is not None and clip_length < 1:
            raise ValueError(f"clip_length must be >= 1 or None, got {clip_length}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.out_channels = in_channels if out_channels is None else out_channels
        self.clip_length = clip_length
        self.dropout_rate = dropout

        self.stem = Conv3dSame(in_channels, NARROW, SPATIAL)
        # level l takes x_{l-1}: 16 channels from the stem, 32 from a reduction
        self.blocks = nn.ModuleList(MicroAutoencoder(NARROW if level == 0 else WIDE) for level in range(LEVELS))
        self.reduce = nn.ModuleList(Conv3dSame(NARROW, WIDE, SPATIAL, stride=HALVE) for _ in range(LEVELS))
        self.bottleneck = KerasConvLSTM2d(
            WIDE, NARROW, kernel_size=3, stride=2, activation="relu", recurrent_activation="hard_sigmoid",
            unit_forget_bias=True, return_sequences=True,
        )
        # decoder stages from 1/8 resolution (level 3) up to full resolution (level 0)
        self.decoder = nn.ModuleList(
            DecoderStage(
                in_channels=NARROW if level == LEVELS else 2 * WIDE,
                skip_channels=NARROW if level == 0 else WIDE,
            )
            for level in range(LEVELS, -1, -1)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = Conv3dSame(WIDE, self.out_channels, HEAD_KERNEL)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras defaults: Glorot-uniform kernels and zero biases (the ConvLSTM resets itself, forget bias 1)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        self.bottleneck.reset_parameters()

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got shape {tuple(x.shape)}")
        _, c, t, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {c} (shape {tuple(x.shape)})")
        if self.clip_length is not None and t != self.clip_length:
            raise ValueError(f"expected clip length T={self.clip_length}, got {t} (shape {tuple(x.shape)})")
        if h % 16 or w % 16:
            raise ValueError(f"H and W must be divisible by 16, got H={h}, W={w} (e.g. resize to 240x320)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C_in, T, H, W)`` -> reconstruction ``(B, C_out, T, H, W)`` in (0, 1)."""
        self._check_input(x)
        x_l = F.relu(self.stem(x))  # x_0: (B, 16, T, H, W)
        skips = [x_l]  # x_l, the reduction outputs (the x_0 stem output first)
        halves: list[torch.Tensor] = []  # half_l of each micro-AE, level 1 first
        for block, reduce in zip(self.blocks, self.reduce):
            half, full = block(x_l)  # (B, 32, T, h/2, w/2), (B, 16, T, h, w)
            x_l = F.relu(reduce(full))  # (B, 32, T, h/2, w/2)
            halves.append(half)
            skips.append(x_l)
        y = self.bottleneck(x_l)  # (B, 16, T, H/16, W/16)
        for stage, level in zip(self.decoder, range(LEVELS, -1, -1)):
            extra = halves[level - 1] if level > 0 else None
            y = stage(y, skips[level], extra)  # (B, 64, T, H/2^l, W/2^l); level 0: (B, 32, T, H, W)
        return torch.sigmoid(self.head(self.dropout(y)))  # (B, C_out, T, H, W)

    # ------------------------------------------------------------------ Keras import

    @classmethod
    def from_keras_h5(
        cls,
        path: str | PathLike[str],
        *,
        clip_length: int | None = None,
        dropout: float | None = None,
    ) -> "SEnDec":
        """Build an sEnDec from a Keras-2 ``.h5`` full-model file (e.g. the released ``anomaly_mdel.h5``).

        The layer mapping follows the graph in the file's ``model_config`` (inbound nodes, concatenation order),
        not layer names; every layer's configuration is checked against this architecture and every weighted
        layer must be used. ``in_channels``/``out_channels`` come from the file; ``dropout=None`` takes the file's
        rate; ``clip_length=None`` accepts any ``T``. Returned in ``eval()`` mode.
        """
        import h5py

        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs or "model_weights" not in f:
                raise ValueError(f"{path}: expected a Keras full-model .h5 (model_config + model_weights)")
            config = json.loads(_as_str(f.attrs["model_config"]))
            graph = _KerasGraph(config)
            weights = {name: _layer_weights(f["model_weights"], name) for name in graph.names}
        mapping = _map_graph(graph)
        model = cls(
            in_channels=mapping.in_channels,
            out_channels=mapping.out_channels,
            clip_length=clip_length,
            dropout=mapping.dropout if dropout is None else dropout,
        )
        mapping.load_into(model, weights)
        return model.eval()


# ---------------------------------------------------------------------- Keras graph matching


def _as_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _layer_weights(group: Any, name: str) -> dict[str, np.ndarray]:
    """``{'kernel': array, 'bias': array, ...}`` of one Keras layer in an h5 ``model_weights`` group."""
    if name not in group:
        return {}
    layer = group[name]
    out: dict[str, np.ndarray] = {}
    for weight_name in layer.attrs.get("weight_names", []):
        weight_name = _as_str(weight_name)
        short = weight_name.rsplit("/", 1)[-1].split(":")[0]  # "conv3d/kernel:0" -> "kernel"
        out[short] = np.asarray(layer[weight_name], dtype=np.float32)
    return out


class _KerasGraph:
    """The layers of a Keras functional ``model_config`` and their inputs, for walking it structurally."""

    def __init__(self, config: dict[str, Any]) -> None:
        if config.get("class_name") not in {"Functional", "Model"}:
            raise ValueError(f"expected a Keras functional model, got class {config.get('class_name')!r}")
        self.layers: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, list[str]] = {}
        for layer in config["config"]["layers"]:
            name = layer["name"]
            nodes = layer.get("inbound_nodes", [])
            if len(nodes) > 1:
                raise ValueError(f"layer {name!r} is called {len(nodes)} times; expected every layer used once")
            self.layers[name] = layer
            self.inputs[name] = [inbound[0] for inbound in nodes[0]] if nodes else []
        self.names = list(self.layers)
        self.outputs = [out[0] for out in config["config"]["output_layers"]]
        self.used: set[str] = set()

    def config(self, name: str) -> dict[str, Any]:
        return self.layers[name]["config"]

    def input(self) -> str:
        found = [n for n, layer in self.layers.items() if layer["class_name"] == "InputLayer"]
        if len(found) != 1:
            raise ValueError(f"expected one InputLayer, found {len(found)}: {found}")
        self.used.add(found[0])
        return found[0]

    def follow(self, class_name: str, *inputs: str) -> str:
        """The single layer of ``class_name`` whose inputs are exactly ``inputs``, in this order."""
        found = [
            n for n, layer in self.layers.items()
            if layer["class_name"] == class_name and self.inputs[n] == list(inputs)
        ]
        if len(found) != 1:
            consumers = {n: self.layers[n]["class_name"] for n in self.names if set(inputs) & set(self.inputs[n])}
            raise ValueError(
                f"expected one {class_name} layer fed by {list(inputs)}, found {found or 'none'}; "
                f"layers fed by them: {consumers}"
            )
        self.used.add(found[0])
        return found[0]


def _expect(graph: _KerasGraph, name: str, **expected: Any) -> None:
    config = graph.config(name)
    for key, value in expected.items():
        found = config.get(key)
        if isinstance(found, list):
            found = tuple(found)
        if found != value:
            raise ValueError(f"Keras layer {name!r}: expected {key}={value!r}, found {found!r}")


def _conv(graph: _KerasGraph, x: str, filters: int | None, kernel: Sequence[int], strides: Sequence[int],
          activation: str, transpose: bool = False) -> str:
    name = graph.follow("Conv3DTranspose" if transpose else "Conv3D", x)
    expected = dict(kernel_size=tuple(kernel), strides=tuple(strides), padding="same", activation=activation,
                    use_bias=True, data_format="channels_last")
    if filters is not None:
        expected["filters"] = filters
    if not transpose:
        expected["dilation_rate"] = (1, 1, 1)
    _expect(graph, name, **expected)
    return name


def _batch_norm_layer(graph: _KerasGraph, x: str) -> str:
    name = graph.follow("BatchNormalization", x)
    config = graph.config(name)
    axis = config.get("axis")
    if axis not in (-1, 4, [4], [-1]):
        raise ValueError(f"Keras layer {name!r}: expected BatchNormalization over the channel axis, found axis={axis}")
    if abs(float(config.get("epsilon", 0.0)) - BN_EPS) > 1e-9:
        raise ValueError(f"Keras layer {name!r}: expected epsilon={BN_EPS}, found {config.get('epsilon')}")
    return name


def _relu(graph: _KerasGraph, x: str) -> str:
    name = graph.follow("Activation", x)
    _expect(graph, name, activation="relu")
    return name


class _Mapping:
    """Which Keras layer feeds which PyTorch module, found by walking the graph as ``SEnDec.forward`` does."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str, str]] = []  # (torch module path, keras layer, kind)
        self.in_channels = 0
        self.out_channels = 0
        self.dropout = 0.0

    def add(self, module: str, layer: str, kind: str) -> None:
        self.pairs.append((module, layer, kind))

    def load_into(self, model: SEnDec, weights: dict[str, dict[str, np.ndarray]]) -> None:
        for module_path, layer, kind in self.pairs:
            module = model.get_submodule(module_path)
            _LOADERS[kind](module, weights[layer], layer)


def _map_graph(graph: _KerasGraph) -> _Mapping:
    m = _Mapping()
    x = graph.input()
    shape = graph.config(x).get("batch_input_shape")
    if not shape or len(shape) != 5:
        raise ValueError(f"expected a 5-D input (batch, T, H, W, C), found batch_input_shape={shape}")
    m.in_channels = int(shape[-1])

    # encoder: stem, then per level micro-AE (down, up, concat(x, up), BN, fuse) and reduction
    x_l = _conv(graph, x, NARROW, SPATIAL, (1, 1, 1), "relu")
    m.add("stem", x_l, "conv")
    skips, halves = [x_l], []
    for level in range(LEVELS):
        half = _conv(graph, x_l, WIDE, SPATIAL, HALVE, "relu")
        up = _conv(graph, half, NARROW, UP_KERNEL, HALVE, "linear", transpose=True)
        cat = graph.follow("Concatenate", x_l, up)
        norm = _batch_norm_layer(graph, cat)
        full = _conv(graph, norm, NARROW, SPATIAL, (1, 1, 1), "relu")
        x_l = _conv(graph, full, WIDE, SPATIAL, HALVE, "relu")
        for module, layer, kind in (("down", half, "conv"), ("up", up, "conv_transpose"), ("norm", norm, "bn"),
                                    ("fuse", full, "conv")):
            m.add(f"blocks.{level}.{module}", layer, kind)
        m.add(f"reduce.{level}", x_l, "conv")
        halves.append(half)
        skips.append(x_l)

    y = graph.follow("ConvLSTM2D", x_l)
    _expect(graph, y, filters=NARROW, kernel_size=(3, 3), strides=(2, 2), padding="same", activation="relu",
            recurrent_activation="hard_sigmoid", use_bias=True, return_sequences=True, data_format="channels_last",
            dilation_rate=(1, 1))
    m.add("bottleneck", y, "convlstm")

    # decoder: up, concat(up, skip), fuse, BN, ReLU, [concat(., half)]
    for stage, level in enumerate(range(LEVELS, -1, -1)):
        up = _conv(graph, y, NARROW, UP_KERNEL, HALVE, "linear", transpose=True)
        cat = graph.follow("Concatenate", up, skips[level])
        fuse = _conv(graph, cat, WIDE, SPATIAL, (1, 1, 1), "linear")
        norm = _batch_norm_layer(graph, fuse)
        y = _relu(graph, norm)
        if level > 0:
            y = graph.follow("Concatenate", y, halves[level - 1])
        for module, layer, kind in (("up", up, "conv_transpose"), ("fuse", fuse, "conv"), ("norm", norm, "bn")):
            m.add(f"decoder.{stage}.{module}", layer, kind)

    drop = graph.follow("Dropout", y)
    if graph.config(drop).get("noise_shape") is not None:
        raise ValueError(f"Keras layer {drop!r}: expected plain Dropout, found noise_shape={graph.config(drop)}")
    m.dropout = float(graph.config(drop)["rate"])
    head = _conv(graph, drop, None, HEAD_KERNEL, (1, 1, 1), "sigmoid")
    m.out_channels = int(graph.config(head)["filters"])
    m.add("head", head, "conv")

    if graph.outputs != [head]:
        raise ValueError(f"expected the model output to be {head!r}, found {graph.outputs}")
    unused = [n for n in graph.names if n not in graph.used]
    if unused:
        raise ValueError(f"Keras layers not part of the sEnDec graph: {unused}")
    return m


def _copy(param: torch.Tensor, array: np.ndarray, what: str) -> None:
    value = torch.from_numpy(np.ascontiguousarray(array))
    if tuple(value.shape) != tuple(param.shape):
        raise ValueError(f"{what}: expected shape {tuple(param.shape)}, found {tuple(value.shape)}")
    with torch.no_grad():
        param.copy_(value)


def _get(weights: dict[str, np.ndarray], key: str, layer: str) -> np.ndarray:
    if key not in weights:
        raise ValueError(f"Keras layer {layer!r}: expected a weight {key!r}, found {sorted(weights)}")
    return weights[key]


def _load_conv(module: nn.Module, weights: dict[str, np.ndarray], layer: str) -> None:
    # Conv3D kernel (kd, kh, kw, in, out) -> (out, in, kd, kh, kw);
    # Conv3DTranspose kernel (kd, kh, kw, out, in) -> ConvTranspose3d (in, out, kd, kh, kw): same permutation.
    _copy(module.weight, _get(weights, "kernel", layer).transpose(4, 3, 0, 1, 2), f"{layer} kernel")
    _copy(module.bias, _get(weights, "bias", layer), f"{layer} bias")


def _load_bn(module: nn.Module, weights: dict[str, np.ndarray], layer: str) -> None:
    channels = module.num_features
    _copy(module.weight, weights.get("gamma", np.ones(channels, np.float32)), f"{layer} gamma")
    _copy(module.bias, weights.get("beta", np.zeros(channels, np.float32)), f"{layer} beta")
    _copy(module.running_mean, _get(weights, "moving_mean", layer), f"{layer} moving_mean")
    _copy(module.running_var, _get(weights, "moving_variance", layer), f"{layer} moving_variance")


def _load_convlstm(module: nn.Module, weights: dict[str, np.ndarray], layer: str) -> None:
    # kernel (3, 3, in, 4*hid) / recurrent_kernel (3, 3, hid, 4*hid) -> (4*hid, in|hid, 3, 3); i, f, c, o blocks
    # keep their order along the output axis.
    _copy(module.input_conv.weight, _get(weights, "kernel", layer).transpose(3, 2, 0, 1), f"{layer} kernel")
    _copy(module.recurrent_conv.weight, _get(weights, "recurrent_kernel", layer).transpose(3, 2, 0, 1),
          f"{layer} recurrent_kernel")
    _copy(module.input_conv.bias, _get(weights, "bias", layer), f"{layer} bias")


_LOADERS = {"conv": _load_conv, "conv_transpose": _load_conv, "bn": _load_bn, "convlstm": _load_convlstm}
