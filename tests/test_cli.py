"""The command line on the real data (skipped without it) and on bad input."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vadkit.cli import app

runner = CliRunner()


def test_datasets_list():
    result = runner.invoke(app, ["datasets", "list"])
    assert result.exit_code == 0
    for name in ("ucsd_ped1", "ucsd_ped2", "avenue", "shanghaitech", "ucf_crime", "xd_violence", "lad2000", "folder"):
        assert name in result.output


def test_check_ped2_acceptance(shared_data):
    result = runner.invoke(app, ["datasets", "check", "ucsd_ped2", "--root", str(shared_data / "ucsd_ped2"), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    assert (len(train), sum(r["num_frames"] for r in train)) == (16, 2550)
    assert (len(test), sum(r["num_frames"] for r in test), sum(r["num_anomalous"] for r in test)) == (12, 2010, 1648)
    table = runner.invoke(app, ["datasets", "check", "ucsd_ped2", "--root", str(shared_data / "ucsd_ped2")])
    assert table.exit_code == 0 and "agree frame for frame" in " ".join(table.output.split())


def test_check_avenue_sample(shared_data):
    result = runner.invoke(app, ["datasets", "check", "avenue", "--root", str(shared_data / "avenue_sample"), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert (row["split"], row["num_frames"], row["num_anomalous"]) == ("test", 76, 53)


def test_bad_root_is_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vadkit.cli", "datasets", "check", "avenue", "--root",
                           str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "missing" in proc.stderr
    unknown = runner.invoke(app, ["datasets", "check", "nope", "--root", str(tmp_path)])
    assert unknown.exit_code == 1 and "ucsd_ped2" in unknown.output
