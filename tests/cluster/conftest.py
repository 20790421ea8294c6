"""A two-node Ray cluster on this machine for the tests of ``vadkit.inference.cluster``, and tiny videos.

The cluster is a head node and one separate worker node (``ray.cluster_utils.Cluster``), one CPU each, every
service on the loopback address, no dashboard, no usage report; the fixture starts it and stops it. Without Ray
installed the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Before Ray is imported: its services bind 127.0.0.1 (not the machine's network address) and report nothing.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="module")
def ray_address():
    """The address of a fresh two-node cluster (head + worker node, 1 CPU each)."""
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        print("ray is not installed: pip install 'vadkit[ray]' to run the cluster tests")
        pytest.skip("ray is not installed (pip install 'vadkit[ray]')")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        yield cluster.address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread in this process (the workers' setting), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_video(path: Path, n: int, shift: int = 0, size: int = 64) -> Path:
    """A moving red square on grey: ``n`` frames of ``size`` x ``size``."""
    from vadkit.io import write_video

    frames = []
    for i in range(n):
        frame = np.full((size, size, 3), 70 + 30 * shift, np.uint8)
        x = (3 * i + 7 * shift) % (size - 20)
        frame[20:40, x:x + 20] = (230, 40, 40)
        frames.append(frame)
    return write_video(path, frames, fps=20)


@pytest.fixture(scope="module")
def make_video():
    """:func:`synthetic_video`, for tests that write their own."""
    return synthetic_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[tuple[str, Path]]:
    """Four tiny synthetic videos of 16-48 frames (1-3 snippets)."""
    folder = tmp_path_factory.mktemp("clips")
    return [(f"clip{k}", synthetic_video(folder / f"clip{k}.mp4", n, shift=k))
            for k, n in enumerate((40, 48, 16, 33))]
