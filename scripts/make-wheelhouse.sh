#!/usr/bin/env bash
# A wheelhouse for an offline service install: one folder with edgepose's own wheel, every wheel it needs
# and the models, made on a machine with internet and installed on one without:
#
#   scripts/make-wheelhouse.sh DIR          for a machine like this one (its /usr/bin/python3 and numpy)
#   scripts/make-wheelhouse.sh --pi DIR     for Raspberry Pi OS Bookworm 64-bit, from any machine
#   ... copy this checkout and DIR to the target, then there:
#   sudo ./install.sh --system --wheels DIR
#
# It resolves what install-system.sh will install (the same extras, constraints-pi.txt, the target's
# numpy), and for this machine checks that DIR installs with no index before it says it is done.
set -euo pipefail
umask 022

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runtime="litert"
pi=0
with_models=1
out=""
python="${PYTHON:-}"
# Raspberry Pi OS Bookworm (Debian 12), 64-bit: Python 3.11, glibc 2.36, and apt's numpy (python3-numpy,
# which apt's picamera2 is built against and install-system.sh keeps).
pi_python=3.11
pi_glibc_minor=36
pi_numpy=1.24.2

usage() {
    cat <<USAGE
usage: scripts/make-wheelhouse.sh [--pi] [--runtime litert|tflite] [--no-models] DIR

  --pi                     for Raspberry Pi OS Bookworm 64-bit (aarch64, Python $pi_python, numpy $pi_numpy),
                           from any machine; without it, for a machine like this one
  --runtime litert|tflite  the runtime the install will use (default litert)
  --no-models              leave out the models (DIR/models: what install.sh --wheels DIR copies)
  PYTHON=/path/python3     interpreter to resolve for (default /usr/bin/python3, as install-system.sh)
USAGE
}

die() { echo "make-wheelhouse.sh: error: $*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --pi) pi=1; shift ;;
        --runtime) runtime="${2:?--runtime needs litert or tflite}"; shift 2 ;;
        --no-models) with_models=0; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "make-wheelhouse.sh: error: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) [ -z "$out" ] || die "one folder only (got $out and $1)"; out="$1"; shift ;;
    esac
done
[ -n "$out" ] || { usage >&2; exit 2; }
case "$runtime" in
    litert|tflite) ;;
    *) die "--runtime must be litert or tflite, not $runtime" ;;
esac
if [ -z "$python" ]; then
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=python3; fi
fi
"$python" -c 'import venv, ensurepip' 2>/dev/null || die "Python's venv module is missing: sudo apt install python3-venv"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
pip=("$tmp/venv/bin/python" -m pip --disable-pip-version-check)
extras="$runtime,mqtt,preview"  # as scripts/install-system.sh installs it

step "edgepose's wheel"
"${pip[@]}" wheel --quiet --no-deps --wheel-dir "$out" "$here"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$here/edgepose/__init__.py")"
wheel="$out/edgepose-$version-py3-none-any.whl"
[ -f "$wheel" ] || die "pip wheel did not make $wheel"

pins=(--constraint "$here/constraints-pi.txt")
if [ "$pi" = 1 ]; then
    echo "numpy==$pi_numpy" > "$tmp/numpy.txt"
    platforms=(--platform manylinux2014_aarch64 --platform linux_aarch64)
    for minor in $(seq 17 "$pi_glibc_minor"); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
    step "the wheels it needs on Raspberry Pi OS Bookworm 64-bit (aarch64, Python $pi_python, numpy $pi_numpy)"
    "${pip[@]}" download --quiet --dest "$out" "${pins[@]}" --constraint "$tmp/numpy.txt" --only-binary :all: \
        "${platforms[@]}" --python-version "$pi_python" --implementation cp --abi "cp${pi_python/./}" --abi abi3 \
        --abi none "${wheel}[$extras]"
else
    system_numpy="$("$python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
    : > "$tmp/numpy.txt"
    [ -z "$system_numpy" ] || echo "numpy==$system_numpy" > "$tmp/numpy.txt"
    step "the wheels it needs on a machine like this one ($("$python" -V), numpy ${system_numpy:-from the wheelhouse})"
    "${pip[@]}" wheel --quiet --wheel-dir "$out" "${pins[@]}" --constraint "$tmp/numpy.txt" "${wheel}[$extras]"
    step "checking that it installs with no index"
    PIP_CONFIG_FILE=/dev/null "${pip[@]}" install --quiet --no-index --find-links "$out" --only-binary :all: \
        "${pins[@]}" --constraint "$tmp/numpy.txt" "edgepose[$extras]==$version" \
        || die "$out does not install by itself (see pip's message above)"
fi

if [ "$with_models" = 1 ]; then
    step "models into $out/models"
    if [ "$pi" = 1 ]; then  # the aarch64 wheels do not run here: fetch with edgepose for this machine
        "${pip[@]}" install --quiet "${wheel}[$runtime]"
    fi
    "$tmp/venv/bin/edgepose" models fetch --models-dir "$out/models"
    "$tmp/venv/bin/edgepose" models verify --models-dir "$out/models"
fi
step "done: $(find "$out" -maxdepth 1 -name '*.whl' | wc -l) wheels in $out$([ "$with_models" = 1 ] && echo ", models in $out/models")"
echo "    copy this checkout and $out to the target, then there: sudo ./install.sh --system --wheels $out"
