#!/usr/bin/env bash
# edgepose as a hardened systemd service. Run through ./install.sh --system | --prefix DIR | --uninstall.
#
#   sudo ./install.sh --system [--with-broker] [--edgetpu] [--mqtt-password-file FILE|-]
#   sudo ./install.sh --system --wheels DIR   offline, from a wheelhouse (scripts/make-wheelhouse.sh)
#   ./install.sh --prefix DIR      the same layout under DIR (staging root for tests and packagers)
#   sudo ./install.sh --uninstall  remove it again, keeping the config and the models
#   sudo ./install.sh --system --instance NAME     one unit per camera: edgepose@NAME.service, NAME.toml
#   sudo ./install.sh --uninstall --instance NAME  remove just that one, keeping its config and state
#
# Layout (DIR is empty for a real install):
#   DIR/opt/edgepose/                         virtual environment (system site packages: apt's picamera2)
#   DIR/opt/edgepose/share/doc/edgepose/      README.md and docs/ (the manual)
#   DIR/opt/edgepose/share/edgepose/install.toml   where this install's config and models are (read by the CLI)
#   DIR/usr/local/bin/edgepose                symlink to DIR/opt/edgepose/bin/edgepose
#   DIR/usr/local/lib/systemd/system/edgepose.service   and edgepose@.service, the template for instances
#   DIR/etc/edgepose/config.toml              written only when absent (0640, root:edgepose)
#   DIR/etc/edgepose/NAME.toml                with --instance NAME: edgepose@NAME.service's, only when absent
#   DIR/etc/edgepose/mqtt_password            only with --mqtt-password-file (0600, root; a systemd credential)
#   DIR/var/lib/edgepose/models/              verified model files (shared by every unit)
#   DIR/var/lib/edgepose/NAME/                with --instance NAME: that instance's state directory
#
# Every run builds a new environment in DIR/opt/edgepose.new, checks it (imports, the models, two frames
# through the model) and only then puts it in place of the old one: a failed install or upgrade leaves
# the installed edgepose as it was and says in one line what failed.
# With --prefix, every path written into the unit and the config points into DIR, apt, useradd and chown
# are skipped, and the service is neither enabled nor started. Safe to re-run. A live run restarts every
# running edgepose unit afterwards: they all run from the environment it replaced.
set -euo pipefail
umask 022

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode=install
prefix=""
prefix_given=0
runtime="litert"
with_broker=0
edgetpu=0
password_file=""
instance=""
mirror="${EDGEPOSE_MODEL_MIRROR:-}"
wheels=""
python="${PYTHON:-}"
# About what a new environment takes (the venv with OpenCV and the runtime is about 300 MB), next to the old one.
need_mb=500
# Coral's apt repository and its signing key (https only; the key is stored, never executed).
coral_repo="${EDGEPOSE_CORAL_APT_URL:-https://packages.cloud.google.com/apt}"
coral_key="${EDGEPOSE_CORAL_KEY_URL:-https://packages.cloud.google.com/apt/doc/apt-key.gpg}"

usage() {
    cat <<USAGE
usage: sudo ./install.sh --system [options]     install, enable and start the edgepose service
       ./install.sh --prefix DIR [options]      install the same layout under DIR (no root needed)
       sudo ./install.sh --uninstall [--prefix DIR]

  --instance NAME          one unit per camera: install (or with --uninstall remove) edgepose@NAME.service,
                           which reads /etc/edgepose/NAME.toml (written from the template when absent),
                           keeps its state in /var/lib/edgepose/NAME and publishes as device NAME;
                           NAME is letters, digits, _ and - (edgepose.service and its config.toml stay
                           as they are)
  --with-broker            also install the mosquitto broker and point the new config at it
  --edgetpu                add Coral's apt repository (signed-by keyring) and install libedgetpu1-std
  --runtime litert|tflite  interpreter package in the venv (default litert; tflite needs Python <= 3.11)
  --models-from DIR        copy the models from a local mirror (or EDGEPOSE_MODEL_MIRROR=DIR)
  --wheels DIR             install offline from a wheelhouse made by scripts/make-wheelhouse.sh (its
                           models/ too): no package index, no apt; what is missing is named first
  --mqtt-password-file F   install F (or - for stdin) as /etc/edgepose/mqtt_password, mode 0600
  PYTHON=/path/python3     interpreter for the venv (default /usr/bin/python3)
USAGE
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --system) shift ;;
        --uninstall) mode=uninstall; shift ;;
        --prefix) prefix="${2:?--prefix needs a folder}"; prefix_given=1; shift 2 ;;
        --with-broker) with_broker=1; shift ;;
        --edgetpu) edgetpu=1; shift ;;
        --runtime) runtime="${2:?--runtime needs litert or tflite}"; shift 2 ;;
        --models-from) mirror="${2:?--models-from needs a folder}"; shift 2 ;;
        --wheels) wheels="${2:?--wheels needs a folder}"; shift 2 ;;
        --mqtt-password-file) password_file="${2:?--mqtt-password-file needs a file or -}"; shift 2 ;;
        --instance) instance="${2:?--instance needs a name}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: error: unknown option for a system install: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$runtime" in
    litert|tflite) ;;
    *) die "--runtime must be litert or tflite, not $runtime" ;;
esac
if [ -n "$instance" ]; then  # it names a file, a folder, a unit and the MQTT device id
    case "$instance" in
        config) die "--instance config would read config.toml, edgepose.service's config: choose another name" ;;
        [A-Za-z0-9]*) ;;
        *) die "--instance $instance: a name starts with a letter or digit" ;;
    esac
    case "$instance" in
        *[!A-Za-z0-9_-]*) die "--instance $instance: a name is letters, digits, _ and - only (it is the MQTT device id too)" ;;
    esac
    [ "${#instance}" -le 64 ] || die "--instance $instance: at most 64 characters"
fi

if [ "$prefix_given" = 1 ]; then
    mkdir -p "$prefix"
    prefix="$(cd "$prefix" && pwd)"
    [ "$prefix" = / ] && prefix=""
    case "$prefix" in
        *[!A-Za-z0-9._/+-]*) die "--prefix may only contain letters, digits and . _ / + - (it goes into the unit file)" ;;
    esac
fi
is_root=0
[ "$(id -u)" = 0 ] && is_root=1
# apt, useradd, chown and systemctl only for a real install by root.
live=0
[ "$is_root" = 1 ] && [ -z "$prefix" ] && live=1
if [ "$live" = 0 ] && [ -z "$prefix" ]; then
    die "a system install needs root: sudo ./install.sh --system (or ./install.sh --prefix DIR to stage one)"
fi
systemd_running=0
[ "$live" = 1 ] && [ -d /run/systemd/system ] && systemd_running=1

opt="$prefix/opt/edgepose"
new="$opt.new"  # the environment being built; it replaces $opt only once it works
old="$opt.old"  # $opt during the swap
etc="$prefix/etc/edgepose"
state="$prefix/var/lib/edgepose"
models="$state/models"
unit_dir="$prefix/usr/local/lib/systemd/system"
unit="$unit_dir/edgepose.service"
template="$unit_dir/edgepose@.service"
if [ -n "$instance" ]; then
    service="edgepose@$instance.service"
    config="$etc/$instance.toml"
else
    service=edgepose.service
    config="$etc/config.toml"
fi
bin_link="$prefix/usr/local/bin/edgepose"
user=edgepose

# --------------------------------------------------------------------------------------------- uninstall
instance_units() {  # every edgepose@NAME.service with a config or an enablement
    local file name
    for file in "$etc"/*.toml /etc/systemd/system/*.wants/edgepose@*.service; do
        [ -e "$file" ] || [ -L "$file" ] || continue
        name="$(basename "$file")"
        case "$name" in
            config.toml) continue ;;
            *.toml) printf 'edgepose@%s.service\n' "${name%.toml}" ;;
            *) printf '%s\n' "$name" ;;
        esac
    done | sort -u
}
if [ "$mode" = uninstall ] && [ -n "$instance" ]; then
    if [ "$systemd_running" = 1 ]; then
        step "stopping and disabling $service"
        systemctl disable --now "$service" 2>/dev/null || true
    fi
    step "kept: its config and its state (remove them yourself if you want them gone)"
    note "config: $config    (rm $config)"
    note "state:  $state/$instance/    (rm -rf $state/$instance)"
    note "the program, the template unit and the other units stay; all of it goes with --uninstall alone"
    exit 0
fi
if [ "$mode" = uninstall ]; then
    if [ "$systemd_running" = 1 ]; then
        mapfile -t units < <(instance_units)
        step "stopping and disabling edgepose.service ${units[*]}"
        systemctl disable --now edgepose.service "${units[@]}" 2>/dev/null || true
    fi
    step "removing the service, the program and the command"
    rm -f "$unit" "$template"
    [ "$systemd_running" = 1 ] && systemctl daemon-reload
    rm -f "$bin_link"
    rm -rf "$opt" "$new" "$old"
    if [ "$live" = 1 ] && id -u "$user" >/dev/null 2>&1; then
        step "removing the system user $user"
        [ -d "$state" ] && chown -R root:root "$state"
        for file in "$etc"/*.toml; do [ -f "$file" ] && chgrp root "$file"; done
        userdel "$user"
    fi
    step "kept: the config and the models (remove them yourself if you want them gone)"
    note "config and secrets: $etc/    (rm -rf $etc)"
    note "models:             $models/    (rm -rf $state)"
    if [ "$live" = 1 ]; then
        note "apt packages it may have installed (python3-venv, python3-picamera2, mosquitto, libedgetpu1-std)"
        note "and Coral's apt source stay: other software may use them"
    fi
    exit 0
fi

# ------------------------------------------------------------------------------------------------ install
if [ -z "$python" ]; then
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=python3; fi
fi

apt_missing() {  # print the packages of "$@" that are not installed
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || printf '%s\n' "$pkg"
    done
}

apt_updated=0
apt_install() {
    local missing
    missing="$(apt_missing "$@")"
    [ -z "$missing" ] && return 0
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    # shellcheck disable=SC2086  # one package per word
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

setup_coral_repo() {
    local keyring=/etc/apt/keyrings/coral-edgetpu.gpg list=/etc/apt/sources.list.d/coral-edgetpu.list tmp
    apt_install ca-certificates curl
    install -d -m 0755 /etc/apt/keyrings
    if [ ! -s "$keyring" ] && [ ! -s "${keyring%.gpg}.asc" ]; then
        tmp="$(mktemp)"
        curl -fsSL --proto '=https' "$coral_key" -o "$tmp"
        if head -c 64 "$tmp" | grep -q -- '-----BEGIN PGP'; then
            keyring="${keyring%.gpg}.asc"  # apt reads armored keys by their .asc name
        fi
        install -m 0644 "$tmp" "$keyring"
        rm -f "$tmp"
    fi
    [ -s "${keyring%.gpg}.asc" ] && keyring="${keyring%.gpg}.asc"
    echo "deb [signed-by=$keyring] $coral_repo coral-edgetpu-stable main" > "$list.new"
    if ! cmp -s "$list.new" "$list"; then
        mv "$list.new" "$list"
        apt_updated=0  # a new source: refresh the index
    else
        rm -f "$list.new"
    fi
}

# ------------------------------------------------------------ what the install needs, checked before any change
if [ -n "$wheels" ]; then
    [ -d "$wheels" ] || die "--wheels $wheels is not a folder"
    wheels="$(cd "$wheels" && pwd)"
    version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$here/edgepose/__init__.py")"
    wheel=""
    for candidate in "$wheels/edgepose-$version-"*.whl; do
        [ -f "$candidate" ] && wheel="$candidate"
    done
    [ -n "$wheel" ] || die "$wheels has no wheel of edgepose $version (edgepose-$version-py3-none-any.whl): make the wheelhouse from this checkout: scripts/make-wheelhouse.sh [--pi] DIR"
    if [ -z "$mirror" ] && [ -d "$wheels/models" ]; then mirror="$wheels/models"; fi
fi
[ -z "$mirror" ] || [ -d "$mirror" ] || die "--models-from $mirror is not a folder"
if [ "$live" = 1 ] && [ -n "$wheels" ]; then  # offline: apt cannot fetch anything, so name all that is missing
    missing=()
    "$python" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    [ "$with_broker" = 1 ] && [ -n "$(apt_missing mosquitto)" ] && missing+=(mosquitto)
    [ "$edgetpu" = 1 ] && [ -n "$(apt_missing libedgetpu1-std)" ] && missing+=(libedgetpu1-std)
    if [ ${#missing[@]} -gt 0 ]; then
        die "--wheels installs without apt, and ${missing[*]} is missing: install it first (sudo apt install ${missing[*]}, while online or from .deb files), then run this again"
    fi
fi
free_mb() {  # free space in MB where the folder $1 is (or would be)
    local dir="$1"
    while [ ! -d "$dir" ]; do dir="$(dirname "$dir")"; done
    df -Pk "$dir" | awk 'NR == 2 { print int($4 / 1024) }'
}
free="$(free_mb "$(dirname "$opt")")"
[ "$free" -ge "$need_mb" ] || die "$(dirname "$opt") has $free MB free; a new environment needs about $need_mb MB (the old one stays until the new one works)"

# --------------------------------------------------------------------------------- system packages and user
if [ "$live" = 1 ] && [ -z "$wheels" ]; then
    step "installing system packages"
    pkgs=(python3-venv)
    if apt-cache show python3-picamera2 >/dev/null 2>&1; then pkgs+=(python3-picamera2); fi
    [ "$with_broker" = 1 ] && pkgs+=(mosquitto)
    apt_install "${pkgs[@]}"
    if [ "$edgetpu" = 1 ]; then
        step "adding Coral's apt repository and installing libedgetpu1-std"
        setup_coral_repo
        apt_install libedgetpu1-std
        note "libedgetpu1-std is built against an older TensorFlow Lite; if the EdgeTPU probe crashes under the"
        note "runtime in the venv (google-coral/edgetpu#812), edgepose falls back to the CPU: see edgepose doctor"
    fi
elif [ "$live" = 1 ]; then
    step "offline install from $wheels: no apt"
    if [ -n "$(apt_missing python3-picamera2)" ] && apt-cache show python3-picamera2 >/dev/null 2>&1; then
        note "python3-picamera2 is not installed: a Raspberry Pi camera needs it (sudo apt install python3-picamera2)"
    fi
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    die "edgepose needs Python >= 3.10 ($python is $("$python" -V 2>&1))"
fi
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    die "Python's venv module is missing; install it: sudo apt install python3-venv"
fi
base_version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$runtime" = tflite ] && ! "$python" -c 'import sys; sys.exit(sys.version_info >= (3, 12))'; then
    die "tflite-runtime has no wheels for Python $base_version; use the default --runtime litert"
fi

if [ "$live" = 1 ]; then
    step "system user $user (groups video, plugdev)"
    for group in video plugdev; do
        getent group "$group" >/dev/null || groupadd --system "$group"
    done
    if ! id -u "$user" >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/edgepose --no-create-home \
            --shell /usr/sbin/nologin --comment "edgepose service" "$user"
    fi
    usermod -a -G video,plugdev "$user"
else
    step "staging into $prefix: no apt packages, no system user, no chown"
    [ "$with_broker" = 1 ] && note "--with-broker: install mosquitto on the target (apt install mosquitto)"
    [ "$edgetpu" = 1 ] && note "--edgetpu: install libedgetpu1-std from Coral's apt repository on the target"
fi

# ------------------------------------------------------------------------- a new environment, checked
if [ -d "$old" ] && [ ! -e "$opt" ]; then  # an upgrade interrupted between its two renames
    mv "$old" "$opt"
    note "restored $opt from an interrupted upgrade"
fi
rm -rf "$new" "$old"
log="$(mktemp "${TMPDIR:-/tmp}/edgepose-install.XXXXXX")"
constraints="$(mktemp)"
finish() {  # a half-built environment never stays; pip's output stays only when something failed
    local status=$?
    rm -rf "$new"
    rm -f "$constraints"
    [ "$status" != 0 ] || rm -f "$log"
}
trap finish EXIT
unchanged() { if [ -e "$opt" ]; then echo "$opt is as it was"; else echo "nothing was installed"; fi; }
fail() {  # what failed (one line); removes the new environment
    rm -rf "$new"
    die "$1; $(unchanged) (all output: $log)"
}
last_error() {  # pip's most telling error line in the log
    local line
    line="$(grep -E '^ *ERROR: (No matching distribution|Could not find)' "$log" | tail -n 1)"
    [ -n "$line" ] || line="$(grep -E '^ *(ERROR|error):' "$log" | tail -n 1)"
    [ -n "$line" ] || line="$(grep -v '^ *$' "$log" | tail -n 1)"
    echo "$line" | sed -e 's/^ *//' -e 's/^ERROR: //' | cut -c 1-300
}
last_line() { grep -v '^ *$' "$log" | tail -n 1 | cut -c 1-300; }  # an edgepose error, or a traceback's end

# apt's picamera2 (and its compiled helpers) are built against apt's numpy: keep exactly that numpy.
system_numpy="$("$python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
if [ -n "$system_numpy" ]; then
    echo "numpy==$system_numpy" > "$constraints"
    note "keeping the system's numpy $system_numpy (apt's picamera2 is built against it)"
fi
# The OpenCV it gets is pinned in constraints-pi.txt (4.11: the last with numpy 1.x wheels; see that file).
# ./install.sh --with-pi-env makes the tests' .venv-pi the same way (and editable, with the test tools).
pins=(--constraint "$here/constraints-pi.txt" --constraint "$constraints")
pip_env=(env)
if [ -n "$wheels" ]; then  # nothing but the wheelhouse: no index, no pip configuration, no builds
    pip_env+=(-u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1)
    what=(--no-index --find-links "$wheels" --only-binary :all: "edgepose[$runtime,mqtt,preview]==$version")
    from="the wheelhouse $wheels"
    hint=": make it again for this machine with scripts/make-wheelhouse.sh (--pi for a Pi), --runtime $runtime"
else
    what=("${here}[$runtime,mqtt,preview]")
    from="$here"
    hint=""
    [ "$live" = 1 ] && hint=": no internet? make a wheelhouse on a machine with it, then install.sh --system --wheels DIR"
fi
pip_env+=(PIP_DISABLE_PIP_VERSION_CHECK=1)

step "building a new environment $new ($runtime runtime, from $from)"
mkdir -p "$(dirname "$opt")"
"$python" -m venv --system-site-packages "$new" >>"$log" 2>&1 || fail "creating a virtual environment with $python failed"
"${pip_env[@]}" "$new/bin/python" -m pip install --no-compile "${pins[@]}" "${what[@]}" >>"$log" 2>&1 \
    || fail "pip could not install edgepose from $from ($(last_error))$hint"
# A venv is not movable as it is: its absolute paths (script lines and activate in bin/, pyvenv.cfg) name
# the folder it was made in. Point them at $opt, and compile with $opt's paths for tracebacks.
{ grep -rlIF -- "$new" "$new/bin" "$new/pyvenv.cfg" || true; } | while IFS= read -r file; do
    sed -i "s|${new//./\\.}|$opt|g" "$file"
done
"$new/bin/python" -m compileall -q -f -j 0 -s "$new" -p "$opt" "$new/lib" >>"$log" 2>&1 || true
probe='import importlib.metadata as m, cv2, edgepose, numpy
print(edgepose.__version__, m.version("opencv-python-headless"), numpy.__version__)'
versions="$("$new/bin/python" -c "$probe" 2>>"$log")" || fail "the new environment cannot import edgepose: $(last_line)"
read -r ep_version cv_version np_version <<< "$versions"
note "edgepose $ep_version with opencv-python-headless $cv_version (constraints-pi.txt) and numpy $np_version"

step "models into $models"
install -d -m 0755 "$state" "$models"
fetch=("$new/bin/python" -m edgepose models fetch --models-dir "$models")
[ -n "$mirror" ] && fetch+=(--from "$mirror")
"${fetch[@]}" 2>>"$log" || fail "the models could not be fetched into $models ($(last_line)); offline, copy them: --models-from DIR"
"$new/bin/python" -m edgepose models verify --models-dir "$models" 2>>"$log" \
    || fail "the models in $models do not verify: $(last_line)"

step "checking the new environment: two frames through the model"
"$new/bin/python" -m edgepose run --models-dir "$models" --source synthetic:160x120 --max-frames 2 \
    --delegate cpu --output /dev/null >>"$log" 2>&1 || fail "the new environment cannot run the model: $(last_line)"

install -D -m 0644 "$here/README.md" "$new/share/doc/edgepose/README.md"
install -d -m 0755 "$new/share/doc/edgepose/docs"
install -m 0644 "$here"/docs/*.md "$new/share/doc/edgepose/docs/"
install -d -m 0755 "$new/share/edgepose"
cat > "$new/share/edgepose/install.toml" <<RECORD
# Written by install.sh: this environment's system install. Run from here without --config, edgepose
# reads this config, and its models folder is the default.
config = "$etc/config.toml"
models_dir = "$models"
RECORD

step "replacing $opt with the new environment"
if [ -e "$opt" ]; then mv "$opt" "$old"; fi
if ! mv "$new" "$opt" || ! "$opt/bin/edgepose" --version >>"$log" 2>&1; then
    [ -e "$opt" ] && [ ! -e "$new" ] && mv "$opt" "$new"
    [ -e "$old" ] && mv "$old" "$opt"
    fail "the new environment does not run from $opt"
fi
rm -rf "$old"
mkdir -p "$(dirname "$bin_link")"
ln -sfn "$opt/bin/edgepose" "$bin_link"
chmod 0750 "$state"
[ "$live" = 1 ] && chown -R "$user:$user" "$state"

step "configuration $config"
install -d -m 0755 "$etc"
if [ -e "$config" ]; then
    note "keeping the existing $config"
else
    if "$python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("picamera2") is None)' 2>/dev/null; then
        source_spec=picamera
    else
        source_spec=/dev/video0
    fi
    if [ "$with_broker" = 1 ]; then
        mqtt_url='url = "mqtt://localhost:1883"   # the local mosquitto; mqtt://USER@host:port or mqtts://'
    else
        mqtt_url='# url = "mqtt://edgepose@broker.local:1883"   # your broker; mqtts://… for TLS'
    fi
    if [ -n "$instance" ]; then device_default="the instance name, $instance"; else device_default="the host name"; fi
    sed -e "s|@MODELS_DIR@|$models|" -e "s|@SOURCE@|$source_spec|" -e "s|^@MQTT_URL@\$|$mqtt_url|" \
        -e "s|@UNIT@|${service%.service}|g" -e "s|@CONFIG_NAME@|$(basename "$config")|" \
        -e "s|@DEVICE_ID_DEFAULT@|$device_default|" "$here/systemd/config.toml.in" > "$config.new"
    chmod 0640 "$config.new"
    mv "$config.new" "$config"
    note "wrote $config (source $source_spec)"
    [ -n "$instance" ] && note "give each camera its own [source] source (and [preview] port) in it"
fi
[ "$live" = 1 ] && chgrp "$user" "$config"
if [ -n "$instance" ]; then  # systemd makes it too (StateDirectory=edgepose/%i); made here it shows in a staged tree
    install -d -m 0750 "$state/$instance"
    [ "$live" = 1 ] && chown "$user:$user" "$state/$instance"
fi

if [ -n "$password_file" ]; then
    (
        umask 077
        if [ "$password_file" = - ]; then cat > "$etc/mqtt_password.new"; else cat -- "$password_file" > "$etc/mqtt_password.new"; fi
    )
    mv "$etc/mqtt_password.new" "$etc/mqtt_password"
    note "installed the MQTT password as $etc/mqtt_password (0600, passed to the service as a credential)"
fi
for secret in "$etc/mqtt_password" "$etc/preview_token"; do
    if [ -e "$secret" ]; then
        chmod 0600 "$secret"
        [ "$live" = 1 ] && chown root:root "$secret"
    fi
done

step "service units $unit and $(basename "$template")"
mkdir -p "$unit_dir"
for file in "$unit" "$template"; do
    sed -e "s|/opt/edgepose/|$opt/|g" -e "s|/etc/edgepose/|$etc/|g" "$here/systemd/$(basename "$file")" > "$file.new"
    chmod 0644 "$file.new"
    if cmp -s "$file.new" "$file"; then rm -f "$file.new"; else mv "$file.new" "$file"; fi
done

if [ "$systemd_running" = 1 ]; then
    step "enabling and (re)starting $service"
    systemctl daemon-reload
    # The others that run use the environment just replaced: restart them too (try-restart: only running ones).
    systemctl try-restart --no-block edgepose.service 'edgepose@*.service' || true
    systemctl enable "$service"
    systemctl restart --no-block "$service"
    note "follow it: journalctl -u ${service%.service} -f    state: systemctl status ${service%.service}"
elif [ -n "$prefix" ]; then
    note "staging root: not enabling or starting the service (on the target: systemctl enable --now ${service%.service})"
else
    note "systemd is not running as PID 1 here: not enabling or starting the service"
fi

step "checking the installation (edgepose doctor)"
doctor=("$opt/bin/edgepose" doctor --config "$config")
[ -n "$instance" ] && doctor=("$opt/bin/edgepose" doctor)  # the install's every unit, this one among them
if [ "$live" = 1 ]; then
    runuser -u "$user" -- "${doctor[@]}" || true
else
    "${doctor[@]}" || true
fi
step "done: edgepose is in $opt, $service's config in $config, the models in $models"
if [ -n "$instance" ]; then
    note "edgepose doctor checks every unit's config; $bin_link run --config $config runs as that unit would"
else
    note "$bin_link reads that config (and those models) when no --config is given, for any user who may read it"
fi
if [ "$live" = 1 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    case " $(id -nG "$SUDO_USER" 2>/dev/null) " in
        *" $user "*) ;;
        *) note "for $SUDO_USER: sudo usermod -a -G $user $SUDO_USER, then log in again (or: sudo -u $user edgepose doctor)" ;;
    esac
fi
