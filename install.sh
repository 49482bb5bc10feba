#!/usr/bin/env bash
# edgepose installer.
#   ./install.sh              make .venv in this checkout, install edgepose + test tools, fetch and verify models
#   ./install.sh --with-tflite   also make .venv-tflite with the legacy tflite-runtime backend (for the tests)
#   ./install.sh --with-pi-env   also make .venv-pi the way a Pi's service environment is made (for the tests)
#   EDGEPOSE_MODEL_MIRROR=DIR ./install.sh   take the models from a local folder (offline machines, CI)
#   sudo ./install.sh --system   the hardened systemd service (see scripts/install-system.sh;
#                                also --prefix DIR to stage it, --uninstall to remove it,
#                                --wheels DIR offline from scripts/make-wheelhouse.sh's folder,
#                                --instance NAME for one unit per camera)
# Safe to re-run: it upgrades in place and keeps verified models.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for arg in "$@"; do  # the service install lives in its own script
    case "$arg" in
        --system|--prefix|--uninstall|--instance) exec "$here/scripts/install-system.sh" "$@" ;;
    esac
done
runtime="litert"
mirror="${EDGEPOSE_MODEL_MIRROR:-}"
python="${PYTHON:-python3}"
# The Pi-like test environment is made with the system's Python and sees its site packages (apt's numpy),
# as scripts/install-system.sh makes the service's.
pi_python="${PI_PYTHON:-/usr/bin/python3}"

usage() {
    cat <<USAGE
usage: ./install.sh [--runtime litert|tflite] [--models-from DIR] [--venv DIR] [--with-tflite] [--with-pi-env]

  --runtime litert   ai-edge-litert (default: maintained, numpy 2, fast INT8 XNNPACK)
  --runtime tflite   tflite-runtime 2.14 (Python <= 3.11, numpy < 2)
  --models-from DIR  copy models from a local mirror instead of downloading (or EDGEPOSE_MODEL_MIRROR=DIR)
  --venv DIR         where to create the virtual environment (default: .venv in this checkout)
  --with-tflite      also create .venv-tflite with tflite-runtime, numpy < 2 (the tests compare both runtimes)
  --with-pi-env      also create .venv-pi like a Pi's service environment: the system's Python with its site
                     packages (apt's numpy; sudo apt install python3-numpy), constraints-pi.txt's OpenCV
                     (the tests run the reference and agreement tests in it; PI_PYTHON=... another Python)

As a service (root):  sudo ./install.sh --system [--with-broker] [--edgetpu] [--mqtt-password-file FILE|-]
                      sudo ./install.sh --system --wheels DIR   (offline: DIR from scripts/make-wheelhouse.sh)
                      ./install.sh --prefix DIR ...   (stage the same layout under DIR)
                      sudo ./install.sh --system --instance NAME   (one unit per camera: edgepose@NAME)
                      sudo ./install.sh --uninstall   (keeps the config and the models)
                      ./install.sh --system --help    (all options)
USAGE
}

venv="$here/.venv"
with_tflite=0
with_pi_env=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runtime) runtime="${2:?--runtime needs litert or tflite}"; shift 2 ;;
        --models-from) mirror="${2:?--models-from needs a folder}"; shift 2 ;;
        --venv) venv="${2:?--venv needs a folder}"; shift 2 ;;
        --with-tflite) with_tflite=1; shift ;;
        --with-pi-env) with_pi_env=1; shift ;;
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

system_numpy=""  # checked before anything is built
if [ "$with_pi_env" = 1 ]; then
    system_numpy="$("$pi_python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null)" || {
        echo "install.sh: error: --with-pi-env needs the system's numpy, as on a Pi: sudo apt install python3-numpy" \
             "(or PI_PYTHON=/path/to/python3 with numpy; $pi_python has none)" >&2
        exit 1
    }
fi

install_into() {  # venv runtime
    if [ ! -x "$1/bin/python" ]; then
        step "creating virtual environment $1"
        "$python" -m venv "$1"
    fi
    step "installing edgepose ($2 runtime) and test tools into $1"
    "$1/bin/python" -m pip install --quiet --upgrade pip
    local pins=()  # the tested versions (constraints.txt) for the default runtime
    [ "$2" = litert ] && pins=(--constraint "$here/constraints.txt")
    "$1/bin/python" -m pip install --quiet "${pins[@]}" -e "$here[$2,mqtt,preview,test]"
}
install_pi_env() {  # venv: made as scripts/install-system.sh makes /opt/edgepose, editable and with the test tools
    local pins
    if [ ! -x "$1/bin/python" ]; then
        step "creating virtual environment $1 ($pi_python, system site packages)"
        "$pi_python" -m venv --system-site-packages "$1"
    fi
    step "installing edgepose (litert runtime) and test tools into $1, keeping the system's numpy $system_numpy"
    pins="$(mktemp)"
    echo "numpy==$system_numpy" > "$pins"
    "$1/bin/python" -m pip install --quiet --upgrade pip
    "$1/bin/python" -m pip install --quiet --constraint "$here/constraints-pi.txt" --constraint "$pins" \
        -e "$here[litert,mqtt,preview,test]" || { rm -f "$pins"; exit 1; }
    rm -f "$pins"
}
install_into "$venv" "$runtime"
if [ "$with_tflite" = 1 ]; then
    install_into "$here/.venv-tflite" tflite
fi
if [ "$with_pi_env" = 1 ]; then
    install_pi_env "$here/.venv-pi"
fi

step "fetching and verifying models"
if [ -n "$mirror" ]; then
    "$venv/bin/edgepose" models fetch --from "$mirror"
else
    "$venv/bin/edgepose" models fetch
fi
"$venv/bin/edgepose" models verify
step "done: $venv/bin/edgepose --help"
