"""``vadkit extract --ray`` and ``vadkit score --ray`` as a person types them (the commands are thin: the work is
tested in test_cluster_ray.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from vadkit.cli import app

runner = CliRunner()


def test_ray_without_ray_installed_prints_the_install_hint(tmp_path, clips, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    for args in (["extract", str(clips[0][1]), "--out", str(tmp_path / "store"), "--ray=local"],
                 ["score", str(clips[0][1]), "--out", str(tmp_path / "scored"), "--ray=local"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert result.output.strip() == "error: Ray is not installed: pip install 'vadkit[ray]'"


def test_extract_and_score_with_ray(tmp_path, ray_address, clips):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    extract = subprocess.run([sys.executable, "-m", "vadkit.cli", "extract", str(clips[2][1]),
                              str(broken), "--out", str(tmp_path / "store"), "--ray", ray_address,
                              "--backend", "torch"], capture_output=True, text=True, timeout=300)
    assert extract.returncode == 1, extract.stderr[-2000:]  # a failed video: listed, exit code 1
    assert "extracted 1 videos" in extract.stdout and "1 failed" in extract.stdout
    assert "failed: broken:" in extract.stderr
    assert list(json.loads((tmp_path / "store" / "manifest.json").read_text())["videos"]) == ["clip2"]
    score = subprocess.run([sys.executable, "-m", "vadkit.cli", "score", str(clips[2][1]), "--ray", ray_address,
                            "--out", str(tmp_path / "scored"), "--no-video", "--backend", "torch", "--json"],
                           capture_output=True, text=True, timeout=300)
    assert score.returncode == 0, score.stderr[-2000:]
    assert json.loads(score.stdout.strip().splitlines()[-1])["name"] == "clip2"
    assert (tmp_path / "scored" / "clip2" / "result.json").is_file()
