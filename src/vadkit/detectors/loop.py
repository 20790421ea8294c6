"""The one training loop, and the base class of every detector that trains a network through it.

The loop runs optimiser steps over batches a detector supplies, for a planned number of steps or until a
wall-clock budget runs out (a fixed rule, checked before each step; the last weights are kept), logs the mean loss
every ``log_every`` steps into the detector's ``history`` (the only time it reads the loss back from the device:
steps never wait for the host), shows one progress bar, and keeps copies of the weights
after the step counts asked for (snapshots: one training run gives every candidate of a schedule search, see
:mod:`vadkit.engine.select`). The data order is seeded: a detector draws everything from the generator it is given.

A :class:`TrainableDetector` supplies

- ``_prepare(train, rng)``: what training reads (features, frames, cubes), once;
- ``_planned_steps(data)`` and ``_steps_per_epoch(data)``;
- ``_batches(data, rng)``: an iterator of batches, in training order;
- ``_loss(batch)``: the loss of one batch (a scalar tensor);
- ``_optimiser()``;
- ``_calibrate(data, rng)``: after training, with the final weights, everything measured on training data
  (normalisation statistics, the threshold).

It lives beside the contract because a detector's ``fit`` runs it and no layer imports one above it;
``vadkit.engine`` re-exports it.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from vadkit.detectors.base import Detector, VideoItem, progress_bar, torch_threads
from vadkit.device import precision_scope, seeded, to_device, training_scope


def train_loop(model: torch.nn.Module, optimiser: torch.optim.Optimizer, batches: Iterator, loss_fn,
               planned_steps: int, *, max_minutes: float | None = None, log_every: int = 20,
               steps_per_epoch: int | None = None, history: list | None = None, snapshot_at: Sequence[int] = (),
               progress: bool = True, description: str = "training", device: str | torch.device = "cpu",
               precision: str = "fp32") -> dict:
    """Run up to ``planned_steps`` optimiser steps (fewer when ``batches`` ends or the budget runs out).

    Each batch (tensors, or tuples/lists/dicts of them) is moved to ``device``; the forward pass and the loss run at
    ``precision`` (``fp32``: TF32 off; ``tf32``; ``bf16`` autocast); on CUDA cuDNN's autotuner is on for the run.

    Returns ``{"steps", "planned_steps", "epochs", "stopped_by_budget", "seconds", "snapshots"}``; ``snapshots``
    maps each reached step count of ``snapshot_at`` to a copy of the weights then.
    """
    history = [] if history is None else history
    budget = None if max_minutes is None else 60.0 * float(max_minutes)
    wanted = set(int(s) for s in snapshot_at)
    snapshots: dict[int, dict] = {}
    model.train()
    start, running, step, stopped = time.perf_counter(), [], 0, False

    def log() -> None:
        if running:
            history.append({"step": step, "loss": float(torch.stack(running).double().mean()),
                            "seconds": round(time.perf_counter() - start, 2)})
            running.clear()

    with progress_bar(description, progress) as bar, training_scope(device):
        task = bar.add_task("train", total=planned_steps, info="")
        while step < planned_steps:
            if budget is not None and time.perf_counter() - start >= budget:
                stopped = True
                break
            try:
                batch = next(batches)
            except StopIteration:
                break
            batch = to_device(batch, device)
            with precision_scope(precision, device):
                loss = loss_fn(batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            running.append(loss.detach().float())  # stays on the device until the next log
            if step in wanted:
                snapshots[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if step % log_every == 0:
                log()
                epoch = f"epoch {step // steps_per_epoch + 1} " if steps_per_epoch else ""
                bar.update(task, info=f"{epoch}loss {history[-1]['loss']:.5f}")
            bar.advance(task)
        log()
    model.eval()
    epochs = round(step / steps_per_epoch, 2) if steps_per_epoch else None
    return {"steps": step, "planned_steps": planned_steps, "epochs": epochs, "stopped_by_budget": stopped,
            "seconds": round(time.perf_counter() - start, 2), "snapshots": snapshots}


class TrainableDetector(Detector):
    """A detector whose network is trained by :func:`train_loop` (see the module docstring for the hooks).

    Subclasses keep ``seed``, ``threads``, ``log_every`` and optionally ``max_minutes`` in ``self.args`` and build
    ``self.model`` in their constructor.
    """

    trainable = True
    model: torch.nn.Module

    def device_modules(self) -> list[torch.nn.Module]:
        return [self.model]

    def _fit(self, train: list[VideoItem], progress: bool) -> None:
        with torch_threads(self.args.get("threads")):
            self._run(train, progress)

    @contextmanager
    def snapshot_run(self, train: list[VideoItem], steps: Sequence[int],
                     progress: bool = True) -> Iterator[dict[int, dict]]:
        """Train ``max(steps)`` steps once (``fit``'s own setup and loop) and yield a copy of the weights after each
        step count in ``steps``; inside the block, :meth:`use_snapshot` makes the detector one of them, calibrated
        on the same training data. The training data (for sEnDec every decoded frame) is released when the block
        ends; the detector stays fitted with the snapshot last used."""
        wanted = sorted({int(s) for s in steps})
        if not wanted or wanted[0] < 1:
            raise ValueError(f"snapshot steps must be positive integers, got {list(steps)}")
        self._begin_fit(train)
        with torch_threads(self.args.get("threads")):
            self._training_data = self._run(train, progress, steps=wanted[-1], snapshot_at=wanted)
        self._end_fit()  # the last step's weights, calibrated: a fitted detector
        try:
            yield self.snapshots_
        finally:
            self._training_data = None
            self.snapshots_ = {}

    def fit_snapshots(self, train: list[VideoItem], steps: Sequence[int], progress: bool = True) -> dict[int, dict]:
        """The snapshots of :meth:`snapshot_run` alone (the training data is not kept)."""
        with self.snapshot_run(train, steps, progress) as snapshots:
            return dict(snapshots)

    def use_snapshot(self, weights: dict) -> "TrainableDetector":
        """Load snapshot weights (inside :meth:`snapshot_run`) and calibrate them on the same training data."""
        if getattr(self, "_training_data", None) is None:
            raise RuntimeError("use_snapshot works inside `with detector.snapshot_run(train, steps)`, where the "
                               "training data it calibrates on is still held")
        self.model.load_state_dict(weights)
        self.model.eval()
        self.threshold_ = None
        with torch_threads(self.args.get("threads")):
            self._calibrate(self._training_data, np.random.default_rng(self.args["seed"]))
        return self._end_fit()

    def _run(self, train: list[VideoItem], progress: bool, steps: int | None = None,
             snapshot_at: Sequence[int] = ()) -> Any:
        with seeded(self.args["seed"], self.device_):  # dropout and sampling from the detector's own seed
            return self._seeded_run(train, progress, steps, snapshot_at)

    def _seeded_run(self, train: list[VideoItem], progress: bool, steps: int | None,
                    snapshot_at: Sequence[int]) -> Any:
        a = self.args
        rng = np.random.default_rng(a["seed"])
        data = self._prepare(train, rng)
        planned = self._planned_steps(data) if steps is None else steps
        record = train_loop(self.model, self._optimiser(), self._batches(data, rng), self._loss, planned,
                            max_minutes=a.get("max_minutes"), log_every=a["log_every"],
                            steps_per_epoch=self._steps_per_epoch(data), history=self.history,
                            snapshot_at=snapshot_at, progress=progress, description=f"training {self.name}",
                            device=self.device_, precision=self.precision_)
        self.snapshots_ = record.pop("snapshots")
        self.schedule_ = {**record, **self._schedule_extra()}
        self._calibrate(data, rng)
        return data

    # -- hooks ----------------------------------------------------------------------------------------------------
    @abstractmethod
    def _prepare(self, train: list[VideoItem], rng: np.random.Generator) -> Any:
        ...

    @abstractmethod
    def _planned_steps(self, data: Any) -> int:
        ...

    def _steps_per_epoch(self, data: Any) -> int | None:
        return None

    @abstractmethod
    def _batches(self, data: Any, rng: np.random.Generator) -> Iterator:
        ...

    @abstractmethod
    def _loss(self, batch: Any) -> torch.Tensor:
        ...

    @abstractmethod
    def _optimiser(self) -> torch.optim.Optimizer:
        ...

    @abstractmethod
    def _calibrate(self, data: Any, rng: np.random.Generator) -> None:
        """Set ``threshold_`` (and any normalisation) from training data with the final weights."""

    def _schedule_extra(self) -> dict:
        return {}
