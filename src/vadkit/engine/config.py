"""Experiment configs: YAML files whose sections mirror typed constructor arguments.

A config names a detector from the registry and gives its constructor arguments, the data, the evaluation
protocol and the seed::

    detector: arnet                 # vadkit.detectors registry name
    detector_args: {model: arnet_single, steps: 3000, ...}
    data: {dataset: ucsd_ped2, root: ../shared/data/ucsd_ped2, features: features/ped2, split: lad2000, split_seed: 0}
    eval: {smoothing: null}
    seed: 0
    device: auto                    # or cpu, cuda, cuda:N; `--device` overrides it
    precision: fp32                 # training precision on the device (fp32, tf32, bf16)
    output: runs/arnet_ped2

``--set a.b=value`` overrides any key (the value is parsed as YAML: ``--set detector_args.steps=100``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml


class ConfigError(ValueError):
    """A config file or override is malformed; the message names the file or key."""


@dataclass
class DataConfig:
    """Where the data is and how it is split.

    Attributes:
        dataset: dataset registry name.
        root: dataset folder.
        features: feature store folder (feature-based detectors); extracted there when missing.
        split: ``official`` (the benchmark's own train/test) or ``lad2000`` (the LAD2000 paper's seeded re-split of
            Ped2 / Avenue, training on normal and abnormal videos).
        split_seed: seed of a generated split.
        crops: how multi-crop features enter: ``mean`` (averaged) or ``first``.
    """

    dataset: str = "ucsd_ped2"
    root: str = "../shared/data/ucsd_ped2"
    features: str | None = None
    split: str = "official"
    split_seed: int = 0
    crops: str = "mean"


@dataclass
class EvalConfig:
    """How frame scores become numbers (every field is written on the protocol card).

    How frames after the last full snippet score is the detector's own ``tail`` argument (``detector_args.tail``),
    written on the protocol card.

    Attributes:
        smoothing: Gaussian sigma (frames) applied to frame scores, or ``None``.
        threshold: for false-alarm rates after ``per-video-minmax`` only (which moves scores into [0, 1]); otherwise
            every number uses the threshold the detector fitted on its training data.
        normalisation: ``none``, ``train-zscore`` or ``per-video-minmax`` (reconstruction detectors).
    """

    smoothing: float | None = None
    threshold: float = 0.5
    normalisation: str = "none"


@dataclass
class SelectConfig:
    """Choosing the training schedule inside the training split (the test split is never looked at).

    Attributes:
        steps: candidate numbers of training steps, or ``None`` (no selection: the detector's own ``steps``).
            Each candidate is scored by ``folds``-fold cross-validation over the training videos (folds stratified
            by video label, drawn from the run's seed): pooled frame-level micro AUC of the held-out videos, each
            scored by a model that did not see it. The best candidate (ties: the fewer steps) is then trained on the
            whole training split. Needs frame labels on the training videos (weakly-supervised splits have them).
        folds: number of folds (2 or more).
    """

    steps: list | None = None
    folds: int = 3


@dataclass
class RunConfig:
    detector: str
    detector_args: dict = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    seed: int = 0
    output: str = "runs"
    name: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N (vadkit.device); `--device` overrides it
    precision: str = "fp32"  # training precision on the device: fp32 (TF32 off), tf32 or bf16 (autocast)

    def to_dict(self) -> dict:
        return {"detector": self.detector, "detector_args": copy.deepcopy(self.detector_args),
                "data": vars(self.data).copy(), "eval": vars(self.eval).copy(),
                "select": copy.deepcopy(vars(self.select)), "seed": self.seed,
                "output": self.output, "name": self.name, "device": self.device, "precision": self.precision}


CHOICES = {
    ("data", "split"): ("official", "lad2000", "fit-normal"),
    ("data", "crops"): ("mean", "first"),
    ("eval", "normalisation"): ("none", "train-zscore", "per-video-minmax"),
}


def _coerce(value: Any, annotation: str, where: str) -> Any:
    """Check ``value`` against a field's annotation (``int``, ``float``, ``str``, ``dict``, ``X | None``)."""
    kinds = [k.strip() for k in str(annotation).split("|")]
    if value is None:
        if "None" in kinds:
            return None
        raise ConfigError(f"{where}: expected {annotation}, found nothing (null)")
    if "float" in kinds and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-3 (no dot) as text
        except ValueError:
            pass
    checks = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "str": lambda v: isinstance(v, str), "dict": lambda v: isinstance(v, dict),
              "list": lambda v: isinstance(v, list)}
    if any(checks[k](value) for k in kinds if k in checks):
        return float(value) if kinds[0] == "float" else value
    raise ConfigError(f"{where}: expected {annotation}, found {value!r} ({type(value).__name__})")


def _build(cls, values: Any, where: str, section: str = ""):
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, found {values!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; expected some of {sorted(known)}")
    checked = {}
    for key, value in values.items():
        annotation = known[key].type
        if key in ("data", "eval", "select") and not section:
            checked[key] = value  # built separately
            continue
        checked[key] = _coerce(value, annotation, f"{where}: {key}")
        choices = CHOICES.get((section, key))
        if choices and checked[key] not in choices:
            raise ConfigError(f"{where}: {key} must be one of {choices}, found {checked[key]!r}")
    return cls(**checked)


def _without_eval_tail(raw: dict, where: str) -> Any:
    """The eval section without ``tail``, which once named the tail policy on the card but changed no score: the
    detector's ``detector_args.tail`` decides. Run folders written then hold ``eval.tail``; one that disagrees with
    the detector's tail is refused, so no config says one thing and does another."""
    section = raw.pop("eval", None) or {}
    if not isinstance(section, Mapping) or "tail" not in section:
        return section
    section = dict(section)
    tail = section.pop("tail")
    args = raw.get("detector_args") if isinstance(raw.get("detector_args"), Mapping) else {}
    if tail != args.get("tail", "extend"):
        raise ConfigError(f"{where}: eval.tail is not a setting (the detector's tail decides how the frames after the "
                          f"last snippet score); found eval.tail={tail!r}: set detector_args.tail instead")
    return section


def config_from_dict(raw: Mapping[str, Any], where: str = "config") -> RunConfig:
    if not isinstance(raw, Mapping) or "detector" not in raw:
        raise ConfigError(f"{where}: expected a mapping with a 'detector' key")
    raw = dict(raw)
    data = _build(DataConfig, raw.pop("data", None) or {}, f"{where}: data", "data")
    evaluation = _build(EvalConfig, _without_eval_tail(raw, where), f"{where}: eval", "eval")
    select = _build(SelectConfig, raw.pop("select", None) or {}, f"{where}: select", "select")
    _check_select(select, f"{where}: select")
    config = _build(RunConfig, raw, where)
    config.data, config.eval, config.select = data, evaluation, select
    if "seed" in config.detector_args:
        raise ConfigError(f"{where}: give the seed once, as the top-level 'seed' (found detector_args.seed too)")
    return config


def _check_select(select: SelectConfig, where: str) -> None:
    if select.steps is not None:
        if not select.steps or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in select.steps):
            raise ConfigError(f"{where}: steps must be a non-empty list of positive integers, found {select.steps!r}")
        select.steps = sorted(set(select.steps))
    if select.folds < 2:
        raise ConfigError(f"{where}: folds must be 2 or more, found {select.folds}")


def apply_overrides(raw: dict, overrides: Sequence[str]) -> dict:
    """Apply ``key.sub=value`` strings (values parsed as YAML) to a nested dict."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = _parse_value(text)
    return raw


def _parse_value(text: str) -> Any:
    """YAML, except that ``3e-4`` is a number (YAML 1.1 reads a float without a dot as text)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return config_from_dict(apply_overrides(raw, overrides), where=str(path))
