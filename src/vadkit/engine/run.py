"""Run folders: everything one training or evaluation produced, written atomically.

``<output>/<name>/``::

    config.yaml      the resolved config (every default filled in)
    protocol.json    the protocol card
    model.pt         the model file: detector, weights, threshold, extraction settings, protocol card
    metrics.json     the numbers, with the card inside
    curves.csv / training.png   training loss per step
    scores/<video>.npy          frame scores of every test video
    split.json       the train/test ids used
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import yaml

from vadkit.io.files import atomic_save_npy, atomic_write_bytes, atomic_write_json, safe_name
from vadkit.report.plots import plot_curve


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class RunDir:
    """A run folder; every write goes to a temporary name first, then is renamed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, output: str | Path, name: str) -> "RunDir":
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(output) / f"{name}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path(output) / f"{name}-{stamp}-{suffix}"
        path.mkdir(parents=True)
        return cls(path)

    def clear(self) -> None:
        """Remove the results of an earlier run in this folder (metrics first, so it never reads as finished)."""
        import shutil

        for name in ("metrics.json", "summary.json", "protocol.json", "model.pt", "curves.csv", "training.png",
                     "roc.png", "confusion.png", "split.json", "selection.json", "calibration.json",
                     "calibration.png", "config.yaml"):
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / "scores", ignore_errors=True)

    def exists(self) -> bool:
        return (self.path / "config.yaml").is_file()

    # -- writers ----------------------------------------------------------------------------------------------
    def write_config(self, config: Mapping[str, Any]) -> None:
        atomic_write_bytes(self.path / "config.yaml", yaml.safe_dump(dict(config), sort_keys=False).encode())

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.path / name, obj)

    def write_scores(self, video_id: str, scores: np.ndarray) -> None:
        atomic_save_npy(self.path / "scores" / f"{safe_name(video_id)}.npy", np.asarray(scores, np.float64))

    def write_curve(self, rows: list[dict]) -> None:
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path / "curves.csv", buffer.getvalue().encode())
        plot_curve(rows, self.path / "training.png")

    # -- readers ----------------------------------------------------------------------------------------------
    def read_config(self) -> dict:
        file = self.path / "config.yaml"
        if not file.is_file():
            raise FileNotFoundError(f"{self.path} is not a vadkit run folder (no config.yaml)")
        return yaml.safe_load(file.read_text())

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def read_scores(self, video_id: str) -> np.ndarray:
        return np.load(self.path / "scores" / f"{safe_name(video_id)}.npy")
