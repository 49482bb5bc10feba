"""One Coral, several edgepose processes: the second one runs on the CPU instead of taking the Coral away.

libedgetpu resets a USB Coral that another process uses before it claims it (that process then dies,
google-coral/edgetpu#237), and when it cannot open the device it says only ``Failed to load delegate``,
as for a Coral that is absent. The fake libedgetpu here does what matters of that: it holds its "device"
(an flock on a file) from the process that opened the delegate until that process ends, and a second
opener gets NULL, like libedgetpu on a busy device, and is written down (where the real library would
have reset the Coral under the first process). The delegate it returns claims no operations, so the
"EdgeTPU" model (a copy of the CPU model) runs on the CPU kernels behind it.

Without a Coral attached there is nothing to claim, so the Coral these tests need is a fake sysfs tree: a
``root`` for the functions, and for the CLI a private mount namespace in which ``/sys/bus`` holds only it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LIGHTNING, assert_one_line_error, cli_env, eventually, need

from edgepose.config import Config, ModelConfig
from edgepose.doctor.accelerator import check_edgetpu_delegate
from edgepose.doctor.findings import OK, Context
from edgepose.inference.runtime.claim import EdgeTpuBusyError, claim_edgetpu, lock_name
from edgepose.inference.runtime.corals import holders, socket_inode, usb_corals
from edgepose.inference.runtime.runtimes import find_runtime

FAKE_LIBEDGETPU = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

typedef struct TfLiteDelegate {  /* tensorflow/lite/core/c/common.h */
    void* data_;
    int (*Prepare)(void* context, struct TfLiteDelegate* delegate);
    void* copy_from_buffer_handle;
    void* copy_to_buffer_handle;
    void* free_buffer_handle;
    long long flags;
    void* opaque_delegate_builder;
} TfLiteDelegate;

static int prepare(void* context, TfLiteDelegate* delegate) { (void)context; (void)delegate; return 0; }

static void note(const char* what) {
    const char* log = getenv("FAKE_EDGETPU_LOG");
    FILE* f = log ? fopen(log, "a") : NULL;
    if (f) { fprintf(f, "%d %s\n", (int)getpid(), what); fclose(f); }
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report)(const char*)) {
    (void)keys; (void)values; (void)n; (void)report;
    const char* device = getenv("FAKE_EDGETPU_DEVICE");
    int fd = device ? open(device, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {  /* the device is another process's */
        note("busy");
        if (fd >= 0) close(fd);
        return NULL;  /* what libedgetpu returns then: "Failed to load delegate from ..." */
    }
    note("opened");  /* the descriptor stays open: the device is this process's until it ends */
    TfLiteDelegate* delegate = calloc(1, sizeof *delegate + 256);
    delegate->Prepare = prepare;  /* claims no operations: the CPU kernels run the model */
    return delegate;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) { free(delegate); }
"""

HOLD = """
import sys
from pathlib import Path
from edgepose.inference.runtime.claim import claim_edgetpu
claim = claim_edgetpu(Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.read()
"""
#: Runs its arguments seeing one Coral USB Accelerator (at 2-1) in /sys/bus, in a mount namespace of its own.
WITH_A_CORAL = """#!/bin/sh
mount -t tmpfs tmpfs /sys/bus || exit 97
d=/sys/bus/usb/devices/2-1
mkdir -p "$d" && printf 18d1 > "$d/idVendor" && printf 9302 > "$d/idProduct" && printf 5000 > "$d/speed" || exit 97
exec "$@"
"""


@pytest.fixture(scope="module")
def fake_libedgetpu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    need("a C compiler (to build the fake libedgetpu)", compiler is not None, "apt install gcc")
    assert compiler is not None
    folder = tmp_path_factory.mktemp("fake_libedgetpu")
    (folder / "fake.c").write_text(FAKE_LIBEDGETPU)
    library = folder / "libedgetpu_fake.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(folder / "fake.c")], check=True)
    return library


@pytest.fixture()
def pose_model(models_dir: Path, tmp_path: Path) -> Path:
    """A bare model whose ``_edgetpu`` twin is a copy of it: the fake delegate runs it on the CPU kernels."""
    model = tmp_path / "pose.tflite"
    shutil.copyfile(models_dir / LIGHTNING, model)
    shutil.copyfile(models_dir / LIGHTNING, tmp_path / "pose_edgetpu.tflite")
    return model


def fake_coral(root: Path, claimed: bool, name: str = "2-1") -> Path:
    """A Coral USB Accelerator in a fake sysfs tree; ``claimed``: its interface bound to usbfs. Returns its node."""
    devices = root / "sys/bus/usb/devices"
    entry = devices / name
    entry.mkdir(parents=True)
    for key, value in {"idVendor": "18d1", "idProduct": "9302", "speed": "5000", "busnum": "2", "devnum": "7"}.items():
        (entry / key).write_text(value + "\n")
    interface = devices / f"{name}:1.0"
    interface.mkdir()
    drivers = root / "sys/bus/usb/drivers"
    (drivers / "usbfs").mkdir(parents=True, exist_ok=True)
    if claimed:
        (interface / "driver").symlink_to(drivers / "usbfs")
    node = root / "dev/bus/usb/002/007"
    node.parent.mkdir(parents=True, exist_ok=True)
    node.write_bytes(b"")
    return node


@pytest.fixture()
def coral_root(tmp_path: Path) -> Path:
    """A fake root with a Coral that no process holds."""
    fake_coral(tmp_path / "root", claimed=False)
    return tmp_path / "root"


@pytest.fixture()
def holder(coral_root: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the EdgeTPU claim of this environment until the test ends."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(coral_root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=cli_env())  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.communicate("", timeout=30)


def with_a_coral(tmp_path: Path) -> list[str]:
    """The command prefix that runs a command seeing a Coral (a fake sysfs in its own mount namespace)."""
    usable = os.geteuid() == 0 and shutil.which("unshare") is not None
    need("root and unshare (a mount namespace with a fake Coral)", usable, "run the tests as root, as .ci/run does")
    script = tmp_path / "with-a-coral.sh"
    script.write_text(WITH_A_CORAL)
    script.chmod(0o755)
    return ["unshare", "--mount", "--propagation", "private", str(script)]


def in_namespace(prefix: list[str], *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``edgepose ARGS`` under ``prefix``, like :func:`conftest.run_cli`."""
    return subprocess.run([*prefix, sys.executable, "-m", "edgepose", *args], capture_output=True, text=True,
                          timeout=300, env=cli_env(env), check=False)  # fmt: skip


def test_usb_coral_held_by_another_process_is_busy_and_named(tmp_path: Path) -> None:
    node = fake_coral(tmp_path, claimed=True)
    [coral] = usb_corals(tmp_path)
    assert coral.claimed and coral.node == node
    # Another process with the device node open, as libusb keeps it while libedgetpu uses the Coral.
    other = subprocess.Popen([sys.executable, "-c", f"f = open({str(node)!r}); input()"], stdin=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert eventually(lambda: [h.pid for h in holders([str(node)])] == [other.pid], timeout=10)
        with pytest.raises(EdgeTpuBusyError, match=rf"USB Coral at 2-1 is in use by pid {other.pid}") as caught:
            claim_edgetpu(tmp_path)
        assert "serves one process at a time" in str(caught.value)
    finally:
        other.communicate("", timeout=30)
    # The busy check gave the claim back: with the interface free, it is this process's.
    (tmp_path / "sys/bus/usb/devices/2-1:1.0/driver").unlink()
    assert not usb_corals(tmp_path)[0].claimed
    with claim_edgetpu(tmp_path):
        assert socket_inode(lock_name())


def test_the_claim_of_another_edgepose_process_is_busy_and_named(
    holder: subprocess.Popen[str], coral_root: Path
) -> None:
    with pytest.raises(EdgeTpuBusyError, match=rf"the EdgeTPU is in use by pid {holder.pid}\b"):
        claim_edgetpu(coral_root)


def test_without_a_coral_there_is_nothing_to_claim(holder: subprocess.Popen[str], tmp_path: Path) -> None:
    claim = claim_edgetpu(tmp_path / "no-coral")  # held by the other process, but there is no Coral to share
    assert [h.pid for h in holders([f"socket:[{socket_inode(lock_name())}]"])] == [holder.pid]
    claim.release()


def test_the_claim_is_this_processs_until_its_last_release(coral_root: Path) -> None:
    first = claim_edgetpu(coral_root)
    second = claim_edgetpu(coral_root)  # a second stage of the same model, say
    assert [h.pid for h in holders([f"socket:[{socket_inode(lock_name())}]"])] == [os.getpid()]
    first.release()
    first.release()  # idempotent: the second claim still holds
    assert socket_inode(lock_name())
    second.release()
    assert socket_inode(lock_name()) == ""


def test_doctor_does_not_probe_a_coral_that_another_process_uses(
    tmp_path: Path, models_dir: Path, fake_libedgetpu: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_coral(tmp_path / "root", claimed=True)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_EDGETPU_LOG", str(log))  # a probe child would write to it
    config = Config(model=ModelConfig(models_dir=str(models_dir), edgetpu_library=str(fake_libedgetpu)))
    ctx = Context(config=config, root=tmp_path / "root", usable_runtimes=[find_runtime("ai_edge_litert")])
    [finding] = check_edgetpu_delegate(ctx)
    assert finding.level == OK, finding
    assert "USB Coral at 2-1 is in use by another process, so not probed" in finding.detail, finding
    assert not log.exists(), "the library was loaded: a real probe would have reset the Coral under its user"


@pytest.mark.slow
def test_a_second_process_runs_on_the_cpu_and_leaves_the_coral_alone(
    tmp_path: Path, testdata: Path, pose_model: Path, fake_libedgetpu: Path
) -> None:
    coral = with_a_coral(tmp_path)
    log = tmp_path / "calls.log"
    env = {"FAKE_EDGETPU_DEVICE": str(tmp_path / "coral"), "FAKE_EDGETPU_LOG": str(log)}
    flags = ["--model", str(pose_model), "--edgetpu-library", str(fake_libedgetpu)]
    poses = tmp_path / "first.jsonl"
    first_err = tmp_path / "first.err"
    with first_err.open("w") as err:
        first = subprocess.Popen([*coral, sys.executable, "-m", "edgepose", "run", "--source", "synthetic:160x120",
                                  *flags, "--delegate", "auto", "--threads", "1", "--output", str(poses)],
                                 env=cli_env(env), stdout=subprocess.DEVNULL, stderr=err, text=True)  # fmt: skip
    try:
        assert eventually(lambda: poses.exists() and len(poses.read_text().splitlines()) > 5, timeout=120), (
            first_err.read_text()
        )
        assert "delegate edgetpu, 1 thread(s) in a supervised worker process" in first_err.read_text()
        opened = log.read_text().splitlines()  # the first one's probe and worker child
        assert [line.split()[1] for line in opened] == ["opened", "opened"], opened

        second = in_namespace(coral, "infer", *flags, str(testdata / "squat.bmp"), env=env)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["backend"]["delegate"] == "xnnpack"
        fallback = [line for line in second.stderr.splitlines() if "falling back" in line]
        assert len(fallback) == 1, second.stderr
        assert "WARNING: delegate edgetpu busy, falling back to xnnpack: the EdgeTPU is in use by " in fallback[0]
        assert f"pid {first.pid}" in fallback[0] and "a Coral serves one process at a time" in fallback[0]

        forced = in_namespace(coral, "infer", *flags, "--delegate", "edgetpu", str(testdata / "squat.bmp"), env=env)
        assert_one_line_error(forced, 1, f"the EdgeTPU is in use by pid {first.pid}")

        assert log.read_text().splitlines() == opened, "the second process must not touch the busy Coral"
        done = len(poses.read_text().splitlines())
        assert eventually(lambda: len(poses.read_text().splitlines()) > done + 5, timeout=60), "the first stopped"
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=30)
    assert first.returncode == 0, first_err.read_text()
    assert "Traceback" not in first_err.read_text()


def test_holders_ignore_what_nobody_has_open(tmp_path: Path) -> None:
    assert holders([str(tmp_path / "nothing")]) == []
    assert holders(["/dev/null"], proc=tmp_path / "no-proc") == []
    assert socket_inode("edgepose-no-such-socket") == ""
