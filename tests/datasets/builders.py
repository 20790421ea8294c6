"""Tiny synthetic datasets in the real on-disk layouts, written by the tests (frames, videos, .mat, .m, masks)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import scipy.io

from vadkit.io import write_video


def write_frames(folder: Path, n: int, ext: str = ".jpg", start: int = 0, digits: int = 3, size: int = 8) -> Path:
    """``n`` small gray frames ``000.jpg`` ... in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        frame = np.full((size, size, 3), (i * 7) % 256, np.uint8)
        cv2.imwrite(str(folder / f"{start + i:0{digits}d}{ext}"), frame)
    return folder


def write_masks(folder: Path, flags: list[int], ext: str = ".bmp") -> Path:
    """One 8x8 mask per frame, with a nonzero pixel where ``flags`` is 1."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, flag in enumerate(flags, 1):
        mask = np.zeros((8, 8), np.uint8)
        if flag:
            mask[3, 4] = 255
        cv2.imwrite(str(folder / f"{i:03d}{ext}"), mask)
    return folder


def write_avi(path: Path, n: int, size: int = 16, fps: float = 25.0) -> Path:
    """An MJPG .avi of ``n`` frames, as the Avenue and ShanghaiTech releases ship videos."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    for i in range(n):
        writer.write(np.full((size, size, 3), (i * 5) % 256, np.uint8))
    writer.release()
    return path


def write_mp4(path: Path, n: int, fps: float = 30.0) -> Path:
    return write_video(path, [np.full((8, 8, 3), (i * 3) % 256, np.uint8) for i in range(n)], fps=fps)


def matlab_cell(items: list) -> np.ndarray:
    """A 1 x K MATLAB cell for ``scipy.io.savemat``."""
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def ranges_cell(per_video: list[list[tuple[int, int]]]) -> np.ndarray:
    """``gt`` of ``ped2.mat`` / ``avenue.mat``: per video a 2 x K array of 1-based inclusive [start; end] columns."""
    return matlab_cell([np.array(r, dtype=np.uint16).T.reshape(2, -1) for r in per_video])


def ucsd_m_text(number: int, per_video: list[str]) -> str:
    """An official ``UCSDpedN.m`` from the bracket contents of each video."""
    lines = ["TestVideoFile = {};"]
    lines += [f"TestVideoFile{{end+1}}.gt_frame = [{body}];" for body in per_video]
    return "\n".join(lines) + "\n"


def write_vol_label(path: Path, flags: list[int], v73: bool = False) -> Path:
    """An Avenue ``N_label.mat`` (``volLabel``: 1 x F cell of 6x10 masks), as MATLAB v5 or v7.3 (HDF5)."""
    masks = []
    for flag in flags:
        mask = np.zeros((6, 10), np.uint8)
        if flag:
            mask[2:4, 5:7] = 1
        masks.append(mask)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not v73:
        scipy.io.savemat(str(path), {"volLabel": matlab_cell(masks)})
        return path
    import h5py

    # MATLAB v7.3 layout: a 512-byte text header, then HDF5; cells are references into '#refs#', data transposed
    with h5py.File(path, "w", userblock_size=512) as handle:
        refs = handle.create_group("#refs#")
        data = np.empty((len(masks), 1), dtype=h5py.ref_dtype)
        for i, mask in enumerate(masks):
            dataset = refs.create_dataset(f"m{i}", data=mask.T)
            data[i, 0] = dataset.ref
        handle.create_dataset("volLabel", data=data)
    with open(path, "r+b") as raw:
        text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
        raw.write(text.ljust(116) + bytes(8) + b"\x00\x02" + b"IM")  # text, subsystem offset, version, endianness
    return path


def labels_from_ranges(n: int, ranges: list[tuple[int, int]]) -> np.ndarray:
    """0/1 labels of ``n`` frames, 1 on each 0-based half-open range."""
    out = np.zeros(n, np.uint8)
    for a, b in ranges:
        out[a:b] = 1
    return out
