#!/usr/bin/env bash
# edgepose installer.
#   ./install.sh              make .venv in this checkout, install edgepose + test tools, fetch and verify models
#   EDGEPOSE_MODEL_MIRROR=DIR ./install.sh   take the models from a local folder (offline machines, CI)
# Safe to re-run: it upgrades in place and keeps verified models.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runtime="litert"
mirror="${EDGEPOSE_MODEL_MIRROR:-}"
python="${PYTHON:-python3}"

usage() {
    cat <<USAGE
usage: ./install.sh [--runtime litert|tflite] [--models-from DIR] [--venv DIR]

  --runtime litert   ai-edge-litert (default: maintained, numpy 2, fast INT8 XNNPACK)
  --runtime tflite   tflite-runtime 2.14 (Python <= 3.11, numpy < 2)
  --models-from DIR  copy models from a local mirror instead of downloading (or EDGEPOSE_MODEL_MIRROR=DIR)
  --venv DIR         where to create the virtual environment (default: .venv in this checkout)
USAGE
}

venv="$here/.venv"
while [ $# -gt 0 ]; do
    case "$1" in
        --runtime) runtime="${2:?--runtime needs litert or tflite}"; shift 2 ;;
        --models-from) mirror="${2:?--models-from needs a folder}"; shift 2 ;;
        --venv) venv="${2:?--venv needs a folder}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: error: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$runtime" in
    litert|tflite) ;;
    *) echo "install.sh: error: --runtime must be litert or tflite, not $runtime" >&2; exit 2 ;;
esac

step() { printf '==> %s\n' "$*"; }

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "install.sh: error: edgepose needs Python >= 3.10 ($python is $("$python" -V 2>&1))" >&2
    exit 1
fi
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    echo "install.sh: error: Python's venv module is missing; install it: sudo apt install python3-venv" >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    step "creating virtual environment $venv"
    "$python" -m venv "$venv"
fi
step "installing edgepose ($runtime runtime) and test tools"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$here[$runtime,mqtt,preview,test]"

step "fetching and verifying models"
if [ -n "$mirror" ]; then
    "$venv/bin/edgepose" models fetch --from "$mirror"
else
    "$venv/bin/edgepose" models fetch
fi
"$venv/bin/edgepose" models verify
step "done: $venv/bin/edgepose --help"
