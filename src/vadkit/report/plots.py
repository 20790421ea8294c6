"""Plots a person would rather look at than read: ROC curves, confusion matrices, score timelines."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from vadkit.io.files import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())


def plot_roc(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], path: Path, title: str = "") -> None:
    """Micro ROC curve of pooled frames (frames without a score left out)."""
    from vadkit.metrics import roc_auc, roc_curve
    from vadkit.scoring import valid_frames

    s = np.concatenate([np.asarray(scores[k], float) for k in sorted(scores)])
    y = np.concatenate([np.asarray(labels[k]) for k in sorted(scores)])
    keep = valid_frames(s)
    fpr, tpr, _ = roc_curve(s[keep], y[keep])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"micro AUC {roc_auc(s[keep], y[keep]):.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="gray", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(matrix: Sequence[Sequence[float]], class_names: Sequence[str], path: Path) -> None:
    """Row-normalised confusion matrix (rows: true class) with class names and counts."""
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(class_names)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    _save(fig, path)


def plot_scores(scores: np.ndarray, smoothed: np.ndarray, threshold: float, events: Sequence, fps: float,
                path: Path, title: str = "") -> None:
    """Score timeline of one video: raw scores (light), smoothed scores, the threshold, events shaded.

    Args:
        scores, smoothed: ``(N,)`` frame scores (NaN = no score).
        events: objects with ``start_frame`` / ``end_frame`` (inclusive), e.g. :class:`vadkit.report.events.Event`.
        fps: frames per second (the x axis is in seconds).
    """
    scores = np.asarray(scores, dtype=np.float64)
    smoothed = np.asarray(smoothed, dtype=np.float64)
    t = np.arange(scores.size) / fps
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3))
    for i, e in enumerate(events):
        ax.axvspan(e.start_frame / fps, (e.end_frame + 1) / fps, color="tab:red", alpha=0.18, lw=0,
                   label="event" if i == 0 else None)
    ax.plot(t, scores, color="tab:blue", alpha=0.3, lw=0.8, label="score")
    ax.plot(t, smoothed, color="tab:blue", lw=1.5, label="smoothed")
    ax.axhline(threshold, color="tab:orange", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    ax.set_xlim(0, max(scores.size / fps, 1e-6))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("anomaly score")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=7, ncol=4)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def plot_calibration(held_out_scores: np.ndarray, threshold: float, false_alarm_rate: float, path: Path,
                     title: str = "") -> None:
    """Histogram of held-out normal scores with the calibrated threshold (one-class detectors)."""
    held = np.asarray(held_out_scores, dtype=np.float64)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if held.size:
        ax.hist(held, bins=min(50, max(5, held.size // 4)), color="tab:blue", alpha=0.7, label="held-out normal snippets")
        achieved = float((held > threshold).mean())
        ax.axvline(threshold, color="tab:red", ls="--",
                   label=f"threshold {threshold:.4g} (requested FAR {false_alarm_rate:.3g}, held-out {achieved:.3g})")
    ax.set_xlabel("k-NN distance")
    ax.set_ylabel("snippets")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_curve(rows: Sequence[Mapping[str, float]], path: Path) -> None:
    """Training loss against step (log scale), one line per logged quantity."""
    plt = _pyplot()
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in rows[0]:
        if key not in ("step", "seconds"):
            ax.plot(steps, [r[key] for r in rows], label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
