"""Repeat a training over several split seeds and report mean ± standard deviation of every number."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from typing import Sequence

from vadkit.engine.config import apply_overrides, config_from_dict, load_config
from vadkit.engine.run import RunDir
from vadkit.io.files import atomic_write_json

SUMMARY_KEYS = ("micro_auc", "macro_auc", "ap", "eer", "auc_abnormal_videos", "far_all", "far_normal_videos",
                "far_abnormal_videos", "video_accuracy")


def repeat_over_seeds(source: str | Path, seeds: int, progress: bool = True, overrides: Sequence[str] = (),
                      device: str | None = None) -> dict:
    """Train and evaluate ``source`` (a config file or a run folder's config) with split/training seeds
    ``0 … seeds-1``. Each run lands in ``<output>/<name>-seeds/seed-<k>``; the summary in ``summary.json`` beside them.
    """
    from vadkit.engine.train import train

    source = Path(source)
    if source.is_dir():
        raw = apply_overrides(RunDir(source).read_config(), overrides)
        base = config_from_dict(raw, where=str(source / "config.yaml"))
    else:
        base = load_config(source, overrides)
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    folder = Path(base.output) / f"{base.name or base.detector + '-' + base.data.dataset}-seeds"
    runs = []
    for seed in range(seeds):
        config = config_from_dict(base.to_dict())
        config.seed = seed
        config.data.split_seed = seed
        run = train(config, progress=progress, run_dir=folder / f"seed-{seed}", device=device)
        runs.append(run.read_json("metrics.json"))
    summary = {}
    for key in SUMMARY_KEYS:
        values = [m[key] for m in runs if key in m and m[key] is not None and np.isfinite(m[key])]
        if values:
            summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                            "values": values}
    result = {"seeds": list(range(seeds)), "summary": summary, "runs": [str(folder / f"seed-{s}") for s in range(seeds)],
              "protocol": runs[0].get("protocol", {})}
    atomic_write_json(folder / "summary.json", result)
    return result
