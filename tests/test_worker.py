"""The supervised inference worker with the real interpreter and model.

There is no EdgeTPU here, so the child runs the CPU kernels (``WorkerSpec.delegate``); faults are real:
the child is SIGKILLed by the test, or made to call ``os.abort()`` / hang on a chosen request by the
worker's test-only hooks. Every check is a count, an equality or a state, never a duration.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import LIGHTNING_EDGETPU, MIRROR, POSENET, ROOT, SYSTEM_PYTHON, cli_env, need_seccomp

from edgepose.config import SourceConfig, build_config
from edgepose.errors import BackendUnavailableError, ConfigError, ModelError
from edgepose.health import PipelineStats
from edgepose.inference.families.movenet.estimator import MoveNetEstimator, still_invokes
from edgepose.inference.runtime.backend import Backend, BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.inference.runtime.interpreters import DelegateAbsentError
from edgepose.inference.worker.facade import WorkerBackend
from edgepose.inference.worker.policy import FailureWindow, WorkerPolicy, tensor_signature
from edgepose.inference.worker.process import STOP_GRACE_S, STOP_POLL_S, WorkerSpec
from edgepose.manifest import ModelFiles
from edgepose.pipeline.loop import STOP_WAIT_S, Service, ServiceOptions
from edgepose.pose import BackendInfo, PoseResult
from edgepose.sinks import SHUTDOWN_BUDGET_S
from edgepose.sinks.notify import PING_FRACTION
from edgepose.sources import open_source
from edgepose.sources.images import load_image

RUNTIME = "ai_edge_litert"
UNIT = ROOT / "systemd" / "edgepose.service"
#: Short waits so a test with several restarts stays quick; long timeouts so only injected faults fire.
FAST = WorkerPolicy(invoke_timeout_s=60.0, start_timeout_s=60.0, max_failures=5, window_s=600.0, backoff_s=0.01,
                    recovery_s=600.0)  # fmt: skip


def _in_process(path: Path, delegate: str = "cpu") -> Backend:
    return open_backend(
        ModelFiles("lightning", path, None), BackendRequest(runtime=RUNTIME, delegate=delegate, threads=1)
    )


def _worker(path: Path, policy: WorkerPolicy = FAST, **faults: frozenset[int]) -> WorkerBackend:
    spec = WorkerSpec(RUNTIME, path, delegate="cpu", threads=1, **faults)
    info = BackendInfo(RUNTIME, "cpu", 1, path.name)
    return WorkerBackend(spec, info, fallback=lambda: _in_process(path, "xnnpack"), policy=policy)


def _children() -> set[int]:
    """Process ids whose parent is this process (zombies included)."""
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me:
            found.add(int(entry.name))
    return found


def _memfds() -> list[str]:
    links = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            links.append(os.readlink(fd))
        except OSError:
            continue
    return [link for link in links if "edgepose-worker" in link]


@pytest.fixture()
def squat(testdata: Path) -> np.ndarray:
    return load_image(testdata / "squat.bmp")


@pytest.fixture()
def reference(lightning_path: Path, squat: np.ndarray) -> np.ndarray:
    """Keypoints of squat.bmp from the same CPU kernels, in-process."""
    return MoveNetEstimator(_in_process(lightning_path)).still(squat).keypoints


@pytest.fixture()
def clean_process() -> Iterator[None]:
    """Fail when a test leaves child processes, /dev/shm entries or shared-memory descriptors behind."""
    shm_before = set(os.listdir("/dev/shm"))
    children_before = _children()
    yield
    assert _children() - children_before == set()
    assert set(os.listdir("/dev/shm")) - shm_before == set()
    assert _memfds() == []


@pytest.mark.parametrize("image", ["squat.bmp", "woman_standing.png"])
def test_worker_gives_the_in_process_keypoints(lightning_path: Path, testdata: Path, image: str) -> None:
    frame = load_image(testdata / image)
    expected = MoveNetEstimator(_in_process(lightning_path))
    worker = _worker(lightning_path)
    try:
        assert worker.supervised and worker.pid not in (None, os.getpid())
        assert worker.inputs[0]["shape"].tolist() == [1, 192, 192, 3]
        actual = MoveNetEstimator(worker)
        np.testing.assert_array_equal(actual.still(frame).keypoints, expected.still(frame).keypoints)
        for _ in range(3):  # video frames follow the tracker's crop: every step must agree too
            np.testing.assert_array_equal(actual.track(frame).keypoints, expected.track(frame).keypoints)
        assert worker.restarts == 0 and worker.failures == 0 and worker.fallback_reason is None
    finally:
        worker.close()


@pytest.mark.slow
def test_sigkill_between_frames_restarts_the_child(
    lightning_path: Path, squat: np.ndarray, reference: np.ndarray, clean_process: None
) -> None:
    worker = _worker(lightning_path)
    estimator = MoveNetEstimator(worker)
    results = []
    pids = []
    try:
        for frame in range(8):
            if frame == 3:
                pid = worker.pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
            results.append(estimator.still(squat).keypoints)
            pids.append(worker.pid)
        assert len(results) == 8
        for keypoints in results:  # the frame that met the dead child was run again, not lost
            np.testing.assert_array_equal(keypoints, reference)
        assert worker.restarts == 1 and worker.failures == 1
        assert worker.last_failure is not None and "SIGKILL" in worker.last_failure
        assert len(set(pids)) == 2 and pids[2] != pids[3]
        assert not worker.in_process
    finally:
        worker.close()


def test_sigkill_mid_invoke_restarts_and_reruns_the_frame(
    lightning_path: Path, squat: np.ndarray, reference: np.ndarray, clean_process: None
) -> None:
    # The child hangs on request 5 (within the first still(): see still_invokes); the test kills it while the
    # parent waits.
    worker = _worker(lightning_path, test_hang_at=frozenset({5}))
    killed = []

    def kill_when_waiting() -> None:
        while worker.requests < 5:
            time.sleep(0.005)
        pid = worker.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_when_waiting)
    killer.start()
    estimator = MoveNetEstimator(worker)
    try:
        results = [estimator.still(squat).keypoints for _ in range(5)]
        killer.join()
        assert len(killed) == 1
        assert len(results) == 5
        for keypoints in results:
            np.testing.assert_array_equal(keypoints, reference)
        assert worker.restarts == 1 and worker.failures == 1
        assert worker.last_failure is not None and "SIGKILL" in worker.last_failure
        assert worker.requests == 5 * still_invokes("flip") + 1  # the requests of 5 stills, plus the one re-run
    finally:
        worker.close()


@pytest.mark.slow
def test_os_abort_in_the_child_restarts_it(
    lightning_path: Path,
    squat: np.ndarray,
    reference: np.ndarray,
    clean_process: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = _worker(lightning_path, test_abort_at=frozenset({3, 8}))
    estimator = MoveNetEstimator(worker)
    try:
        with caplog.at_level(logging.WARNING, logger="edgepose.inference"):
            results = [estimator.still(squat).keypoints for _ in range(6)]
        assert len(results) == 6
        for keypoints in results:
            np.testing.assert_array_equal(keypoints, reference)
        assert worker.restarts == 2 and worker.failures == 2
        assert worker.last_failure is not None and "SIGABRT" in worker.last_failure
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2 and all("SIGABRT" in w and "restarting" in w for w in warnings)
        assert worker.fallback_reason is None and worker.info.delegate == "cpu"
    finally:
        worker.close()


@pytest.mark.slow
def test_a_hung_child_is_killed_and_restarted(
    lightning_path: Path, squat: np.ndarray, reference: np.ndarray, clean_process: None
) -> None:
    policy = WorkerPolicy(invoke_timeout_s=1.0, start_timeout_s=60.0, backoff_s=0.01)
    worker = _worker(lightning_path, policy, test_hang_at=frozenset({2}))
    try:
        keypoints = MoveNetEstimator(worker).still(squat).keypoints
        np.testing.assert_array_equal(keypoints, reference)
        assert worker.restarts == 1 and worker.failures == 1
        assert worker.last_failure is not None and "hung" in worker.last_failure
    finally:
        worker.close()


def test_repeated_failures_fall_back_to_the_cpu_in_process(
    lightning_path: Path,
    squat: np.ndarray,
    clean_process: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = WorkerPolicy(invoke_timeout_s=60.0, start_timeout_s=60.0, max_failures=3, backoff_s=0.01)
    children_before = _children()
    worker = _worker(lightning_path, policy, test_abort_at=frozenset(range(3, 100)))  # every child from request 3 on
    estimator = MoveNetEstimator(worker)
    xnnpack = MoveNetEstimator(_in_process(lightning_path, "xnnpack")).still(squat).keypoints
    try:
        assert estimator.info.delegate == "cpu" and estimator.backends == (worker,)
        with caplog.at_level(logging.WARNING, logger="edgepose.inference"):
            results = [estimator.still(squat).keypoints for _ in range(5)]
        assert len(results) == 5
        assert worker.in_process and worker.pid is None
        assert worker.failures == 3 and worker.restarts == 2
        assert worker.fallback_reason is not None
        assert "failed 3 times" in worker.fallback_reason and "SIGABRT" in worker.fallback_reason
        assert worker.info.delegate == "xnnpack"
        assert estimator.info == worker.info  # the estimator's info is live: what runs the model now
        fallback = [r.getMessage() for r in caplog.records if "falling back to in-process xnnpack" in r.getMessage()]
        assert len(fallback) == 1 and worker.fallback_reason in fallback[0]
        assert all(r.levelno == logging.WARNING for r in caplog.records)
        for keypoints in results[1:]:  # from the failing frame on, every result is in-process XNNPACK's
            np.testing.assert_array_equal(keypoints, xnnpack)
        assert _children() - children_before == set()  # the last child is reaped at the fall-back
    finally:
        worker.close()


def test_a_fallback_mid_run_keeps_other_threads_log_lines() -> None:
    """The in-process fallback opens its interpreter under ``native_stderr_silenced`` while the capture
    thread and the sinks run: what they log meanwhile still reaches stderr. At start-up, with no other
    thread, the runtime's own stderr lines are still dropped."""
    script = textwrap.dedent(
        """
        import logging, os, threading
        from edgepose.logs import native_stderr_silenced, setup_logging
        setup_logging(0)
        with native_stderr_silenced():  # start-up: nothing else runs
            os.write(2, b"native noise at start-up\\n")
        inside, logged = threading.Event(), threading.Event()
        def capture_thread():
            inside.wait(30)
            logging.getLogger("edgepose.pipeline.capture").warning("a line from another thread")
            logged.set()
        thread = threading.Thread(target=capture_thread)
        thread.start()
        with native_stderr_silenced():  # mid-run: the worker's fallback opening its interpreter
            inside.set()
            assert logged.wait(30)
        thread.join()
        logging.getLogger("edgepose").info("after the fallback")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=cli_env(),
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "edgepose: WARNING: a line from another thread" in proc.stderr, proc.stderr
    assert "after the fallback" in proc.stderr
    assert "native noise at start-up" not in proc.stderr


def test_close_releases_everything_even_after_restarts(lightning_path: Path, squat: np.ndarray) -> None:
    shm_before = set(os.listdir("/dev/shm"))
    children_before = _children()
    worker = _worker(lightning_path, test_abort_at=frozenset({2}))
    assert _memfds() and len(_children() - children_before) == 1  # (mmap holds a dup of the memfd)
    MoveNetEstimator(worker).still(squat)
    assert worker.restarts == 1
    worker.close()
    worker.close()  # idempotent
    assert _children() - children_before == set()
    assert set(os.listdir("/dev/shm")) - shm_before == set()
    assert _memfds() == []


def test_start_errors_are_the_usual_exceptions(tmp_path: Path, models_dir: Path) -> None:
    edgetpu_model = models_dir / LIGHTNING_EDGETPU
    children_before = _children()
    with pytest.raises(ModelError, match="compiled for the Coral EdgeTPU"):
        _worker(edgetpu_model)
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\0\0\0\0TFL3" + b"\xff" * 64)
    with pytest.raises(ModelError):
        _worker(corrupt)
    assert _children() - children_before == set()
    assert _memfds() == []


def test_open_backend_runs_the_edgetpu_in_the_worker_and_falls_back(
    lightning_path: Path, models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = ModelFiles("lightning", lightning_path, models_dir / LIGHTNING_EDGETPU)
    missing = str(models_dir / "no-such-libedgetpu.so.1")
    request = BackendRequest(runtime=RUNTIME, delegate="edgetpu", edgetpu_probe=False, edgetpu_library=missing)
    children_before = _children()
    with pytest.raises(DelegateAbsentError, match="cannot load"):  # said by the worker child, not a crash
        open_backend(files, request)
    auto = BackendRequest(runtime=RUNTIME, delegate="auto", edgetpu_probe=False, edgetpu_library="libc.so.6")
    with caplog.at_level(logging.INFO, logger="edgepose.inference.runtime.delegates"):
        backend = open_backend(files, auto)
    assert backend.info.delegate == "xnnpack" and not backend.supervised
    # libc is no delegate: the child reports what load_delegate raised, and auto walks on.
    assert any("delegate edgetpu unavailable, falling back to xnnpack" in r.getMessage() for r in caplog.records)
    assert any("tflite_plugin_create_delegate" in r.getMessage() for r in caplog.records)
    assert _children() - children_before == set()


def test_the_child_exits_when_its_parent_is_killed(lightning_path: Path) -> None:
    # A parent process starts a worker, prints the child's pid and SIGKILLs itself.
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from edgepose.inference.worker.facade import WorkerBackend
        from edgepose.inference.worker.process import WorkerSpec
        from edgepose.pose import BackendInfo
        path = Path({str(lightning_path)!r})
        w = WorkerBackend(WorkerSpec({RUNTIME!r}, path, "cpu"), BackendInfo("r", "cpu", 1, path.name))
        print(w.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    child = int(proc.stdout.split()[0])
    for _ in range(200):  # the orphaned child notices within about a second; allow plenty
        if not Path(f"/proc/{child}").exists() or " Z " in Path(f"/proc/{child}/stat").read_text():
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the worker child {child} outlived its parent")


def test_failure_window_counts_within_the_window_and_in_a_row() -> None:
    window = FailureWindow(WorkerPolicy(max_failures=3, window_s=10.0, backoff_s=0.5, backoff_max_s=1.5))
    assert window.record(0.0) is False and window.backoff() == 0.5
    window.succeeded()
    assert window.record(4.0) is False and window.backoff() == 0.5  # a success restarts the backoff
    window.succeeded()
    assert window.record(12.0) is False  # the failure at 0 s has left the window: 2 in it
    window.succeeded()
    assert window.record(13.9) is True  # 4, 12 and 13.9 s: three within 10 s
    spaced = FailureWindow(WorkerPolicy(max_failures=3, window_s=10.0, backoff_s=0.5, backoff_max_s=1.5))
    assert spaced.record(0.0) is False and spaced.backoff() == 0.5
    assert spaced.record(20.0) is False and spaced.backoff() == 1.0
    assert spaced.record(40.0) is True  # never three in the window, but three in a row
    assert spaced.backoff() == 1.5  # bounded


def test_stop_signals_to_the_child_are_not_crashes(
    lightning_path: Path, squat: np.ndarray, reference: np.ndarray, clean_process: None
) -> None:
    # Ctrl-C and systemd's stop reach the whole process group; only the parent decides when the child ends.
    worker = _worker(lightning_path)
    try:
        pid = worker.pid
        assert pid is not None
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(pid, signum)
        np.testing.assert_array_equal(MoveNetEstimator(worker).still(squat).keypoints, reference)
        assert worker.pid == pid and worker.restarts == 0 and worker.failures == 0
    finally:
        worker.close()
    with pytest.raises(BackendUnavailableError, match="closed"):
        worker.invoke()


@pytest.mark.slow
def test_worker_restarts_under_the_units_seccomp_filters(lightning_path: Path) -> None:
    """memfd, the child's start and a restart after an abort are allowed by systemd/edgepose.service."""
    need_seccomp()
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from edgepose.inference.worker.facade import WorkerBackend
        from edgepose.inference.worker.policy import WorkerPolicy
        from edgepose.inference.worker.process import WorkerSpec
        from edgepose.pose import BackendInfo
        path = Path({str(lightning_path)!r})
        spec = WorkerSpec({RUNTIME!r}, path, "cpu", test_abort_at=frozenset({{2}}))
        w = WorkerBackend(spec, BackendInfo("r", "cpu", 1, path.name), policy=WorkerPolicy(backoff_s=0.01))
        for _ in range(3):
            w.invoke()
            w.output()
        print(w.restarts, w.failures, w.last_failure)
        w.close()
        """
    )
    cmd = [SYSTEM_PYTHON, str(ROOT / "tests" / "unit_sandbox.py"), str(ROOT / "systemd" / "edgepose.service"),
           "--kill", "--", sys.executable, "-c", script]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1", "was", "killed", "by", "SIGABRT"]


class _Recorder:
    """A sink that keeps each result's frame number and best keypoints."""

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.keypoints: list[np.ndarray] = []

    def start(self) -> None:
        """Nothing to start."""

    def publish(self, result: PoseResult) -> None:
        self.frames.append(result.frame)
        self.keypoints.append(result.keypoints)

    def close(self) -> None:
        """Nothing to release."""


def _run_service(folder: Path, estimator: MoveNetEstimator) -> _Recorder:
    recorder = _Recorder()
    source = open_source(str(folder), SourceConfig())
    Service(source, estimator, [recorder], ServiceOptions(), PipelineStats()).run(threading.Event())
    return recorder


@pytest.mark.slow
def test_the_pipeline_keeps_every_frame_through_crashes(
    lightning_path: Path, testdata: Path, tmp_path: Path, clean_process: None
) -> None:
    # The real loop over a folder of photos; the child aborts twice and is SIGKILLed once on the way.
    for index in range(12):
        name = "squat.bmp" if index % 3 else "woman_standing.png"
        (tmp_path / f"{index:03d}{Path(name).suffix}").write_bytes((testdata / name).read_bytes())
    expected = _run_service(tmp_path, MoveNetEstimator(_in_process(lightning_path)))
    worker = _worker(lightning_path, test_abort_at=frozenset({4, 15}))
    original = worker.invoke
    calls = []

    def invoke_and_kill_once() -> None:  # SIGKILL the child between two frames, from the loop's own thread
        calls.append(1)
        if len(calls) == 20 and worker.pid is not None:
            os.kill(worker.pid, signal.SIGKILL)
        original()

    worker.invoke = invoke_and_kill_once  # type: ignore[method-assign]
    try:
        actual = _run_service(tmp_path, MoveNetEstimator(worker))
        assert len(expected.frames) == 12
        assert actual.frames == expected.frames  # every frame, in order: none skipped
        for got, want in zip(actual.keypoints, expected.keypoints, strict=True):
            np.testing.assert_array_equal(got, want)
        assert worker.restarts == 3 and worker.failures == 3 and worker.fallback_reason is None
    finally:
        worker.close()


@pytest.mark.slow
def test_close_from_another_thread_ends_a_waiting_invoke(lightning_path: Path, clean_process: None) -> None:
    worker = _worker(lightning_path, test_hang_at=frozenset({1}))

    def close_when_waiting() -> None:
        while worker.requests < 1:
            time.sleep(0.005)
        worker.close()

    closer = threading.Thread(target=close_when_waiting)
    closer.start()
    with pytest.raises(BackendUnavailableError, match="closed"):
        worker.invoke()
    closer.join()
    assert worker.restarts == 0 and worker.failures == 0 and worker.pid is None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the runtime's Delegate.__del__ on libc
def test_edgetpu_worker_config_key_and_in_process_path(lightning_path: Path, models_dir: Path) -> None:
    assert build_config(environ={}).model.edgetpu_worker is True
    assert build_config(environ={"EDGEPOSE_MODEL_EDGETPU_WORKER": "false"}).model.edgetpu_worker is False
    with pytest.raises(ConfigError, match=r"EDGEPOSE_MODEL_EDGETPU_WORKER .*must be true or false"):
        build_config(environ={"EDGEPOSE_MODEL_EDGETPU_WORKER": "maybe"})
    # With the worker off, the EdgeTPU is loaded in-process as before; a library that is no delegate is a
    # clean BackendUnavailableError there too.
    files = ModelFiles("lightning", lightning_path, models_dir / LIGHTNING_EDGETPU)
    request = BackendRequest(
        runtime=RUNTIME, delegate="edgetpu", edgetpu_probe=False, edgetpu_library="libc.so.6", edgetpu_worker=False
    )
    with pytest.raises(BackendUnavailableError, match="tflite_plugin_create_delegate"):
        open_backend(files, request)


def test_without_a_fallback_repeated_failures_end_with_the_reason(
    lightning_path: Path, squat: np.ndarray, clean_process: None, caplog: pytest.LogCaptureFixture
) -> None:
    # What ``--delegate edgetpu`` gets: the EdgeTPU is mandatory, so the run ends rather than go on on the CPU.
    policy = WorkerPolicy(invoke_timeout_s=60.0, start_timeout_s=60.0, max_failures=2, backoff_s=0.01)
    spec = WorkerSpec(RUNTIME, lightning_path, delegate="cpu", test_abort_at=frozenset(range(2, 100)))
    worker = WorkerBackend(spec, BackendInfo(RUNTIME, "cpu", 1, lightning_path.name), policy=policy)
    try:
        reason = r"failed 2 times.*SIGABRT.*no CPU fallback"
        with (
            caplog.at_level(logging.WARNING, "edgepose.inference"),
            pytest.raises(BackendUnavailableError, match=reason),
        ):
            MoveNetEstimator(worker).still(squat)
        assert worker.failures == 2 and worker.restarts == 1 and worker.pid is None
        assert [r.levelname for r in caplog.records] == ["WARNING", "ERROR"]
    finally:
        worker.close()


@pytest.mark.parametrize(("times", "falls_back"), [((0.0, 1.0, 2.0), True), ((0.0, 700.0, 1400.0), False)])
@pytest.mark.slow
def test_failures_between_good_frames_count_within_the_window(
    lightning_path: Path, clean_process: None, times: tuple[float, ...], falls_back: bool
) -> None:
    # Requests 3, 5 and 7 abort, each followed by a good one; the clock (injected) says when they happened.
    policy = WorkerPolicy(invoke_timeout_s=60.0, start_timeout_s=60.0, max_failures=3, window_s=600.0, backoff_s=0.01)
    spec = WorkerSpec(RUNTIME, lightning_path, delegate="cpu", test_abort_at=frozenset({3, 5, 7}))
    clock = iter(times)
    info = BackendInfo(RUNTIME, "cpu", 1, lightning_path.name)
    worker = WorkerBackend(
        spec, info, fallback=lambda: _in_process(lightning_path, "xnnpack"), policy=policy, clock=lambda: next(clock)
    )
    try:
        for _ in range(6):
            worker.invoke()
        assert worker.failures == 3
        assert worker.in_process is falls_back
        if falls_back:
            assert worker.fallback_reason is not None and "failed 3 times in 600 s" in worker.fallback_reason
        else:
            assert worker.fallback_reason is None and worker.restarts == 3
    finally:
        worker.close()


def test_a_model_with_float_input_and_five_outputs(testdata: Path, clean_process: None) -> None:
    # The Backend surface is model-agnostic: BlazePose's landmark model (float32 input, five outputs of
    # different shapes) gives the same outputs in the worker as in-process.
    path = MIRROR / "blazepose" / "pose_landmark_full.tflite"
    local = _in_process(path)
    worker = WorkerBackend(WorkerSpec(RUNTIME, path, delegate="cpu"), BackendInfo(RUNTIME, "cpu", 1, path.name))
    try:
        assert [o["shape"].tolist() for o in worker.outputs] == [o["shape"].tolist() for o in local.outputs]
        assert len(worker.outputs) == 5 and worker.input_size == 256
        image = cv2.resize(load_image(testdata / "woman_standing.png"), (256, 256))
        for backend in (local, worker):
            dst = backend.input_tensor()
            dst[...] = image[..., ::-1].astype(np.float32) / 255.0
            del dst
            backend.invoke()
        for index in range(5):
            np.testing.assert_array_equal(worker.output(index), local.output(index))
        assert float(local.output(1).ravel()[0]) > 0.5  # the model sees a person: not a run on zeros
    finally:
        worker.close()


# --- the recovery within the unit's limits --------------------------------------------------------------

#: Opening the in-process CPU fallback and running the failed frame on it: 0.02 s measured here, a few
#: tenths of a second on a Pi 4; 3 s is ample.
FALLBACK_OPEN_S = 3.0


def _unit_seconds(key: str) -> float:
    """A time setting of systemd/edgepose.service in seconds (plain seconds, as the unit writes them)."""
    values = [line.split("=", 1)[1].strip() for line in UNIT.read_text().splitlines() if line.startswith(key + "=")]
    assert len(values) == 1, (key, values)
    return float(values[0].removesuffix("s"))


def test_the_recovery_fits_the_units_watchdog_and_stop_timeout() -> None:
    policy = WorkerPolicy()
    watchdog = _unit_seconds("WatchdogSec")
    # The loop pings every WatchdogSec × PING_FRACTION, so the last ping may be that old when a frame's
    # recovery starts; the recovery, the fallback's start and that frame must all fit before the watchdog fires.
    assert watchdog * PING_FRACTION + policy.worst_case_s() + FALLBACK_OPEN_S < watchdog
    # Without its budget the same policy would have outlived the watchdog (a hung invoke, then restarts
    # that each take their whole start and invoke timeouts): the budget is what makes it fit.
    unbounded = dataclasses.replace(policy, recovery_s=math.inf).worst_case_s()
    assert unbounded > watchdog
    # A stop: the worker sees it within STOP_POLL_S, the capture thread is given STOP_WAIT_S, the sinks
    # SHUTDOWN_BUDGET_S together, the child STOP_GRACE_S to exit; all before systemd's SIGKILL.
    stopping = STOP_POLL_S + STOP_WAIT_S + SHUTDOWN_BUDGET_S + STOP_GRACE_S
    assert stopping < _unit_seconds("TimeoutStopSec")


@pytest.mark.slow
def test_a_wedged_child_falls_back_within_the_recovery_budget(
    lightning_path: Path, squat: np.ndarray, clean_process: None
) -> None:
    # Every child hangs in every invoke: without a budget it would be restarted 100 times (≥ 100 s).
    policy = WorkerPolicy(invoke_timeout_s=1.0, start_timeout_s=60.0, max_failures=100, backoff_s=0.01,
                          recovery_s=2.5)  # fmt: skip
    worker = _worker(lightning_path, policy, test_hang_at=frozenset(range(1, 1000)))
    try:
        started = time.monotonic()
        keypoints = MoveNetEstimator(worker).still(squat).keypoints
        took = time.monotonic() - started
        assert worker.in_process and worker.info.delegate == "xnnpack"
        assert worker.fallback_reason is not None and "did not recover within 2.5 s" in worker.fallback_reason
        assert 1 <= worker.failures < 100 and "hung" in (worker.last_failure or "")
        assert took < 2.5 + 20.0, took  # the budget plus ample slack for a loaded machine, not 100 restarts
        assert float(keypoints[:, 2].mean()) > 0.3  # the frame ran on the fallback: a real pose
    finally:
        worker.close()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["hang", "backoff"])
def test_a_stop_during_recovery_ends_the_loop_promptly(
    lightning_path: Path, testdata: Path, tmp_path: Path, clean_process: None, fault: str
) -> None:
    # From the second photo's second request on, the child hangs (the stop finds the worker waiting for
    # it) or aborts and the worker waits a long backoff (the stop finds it there). Either wait is 120 s;
    # the stop must not be.
    for index in range(6):
        (tmp_path / f"{index:03d}.bmp").write_bytes((testdata / "squat.bmp").read_bytes())
    first_failing = still_invokes("flip") + 2
    failing = frozenset(range(first_failing, 1000))
    if fault == "hang":
        policy = WorkerPolicy(invoke_timeout_s=120.0, start_timeout_s=120.0, recovery_s=600.0)
        faults = {"test_hang_at": failing}
    else:
        policy = WorkerPolicy(invoke_timeout_s=120.0, start_timeout_s=120.0, recovery_s=600.0, backoff_s=120.0,
                              backoff_max_s=120.0)  # fmt: skip
        faults = {"test_abort_at": failing}
    stop = threading.Event()
    spec = WorkerSpec(RUNTIME, lightning_path, delegate="cpu", threads=1, **faults)
    worker = WorkerBackend(spec, BackendInfo(RUNTIME, "edgetpu", 1, lightning_path.name), policy=policy,
                           fallback=lambda: _in_process(lightning_path, "xnnpack"), stop=stop)  # fmt: skip
    recorder = _Recorder()
    service = Service(open_source(str(tmp_path), SourceConfig()), MoveNetEstimator(worker), [recorder],
                      ServiceOptions(), PipelineStats())  # fmt: skip

    def stop_when_recovering() -> None:
        while worker.requests < first_failing or (fault == "backoff" and worker.failures < 1):
            time.sleep(0.01)
        stop.set()

    stopper = threading.Thread(target=stop_when_recovering)
    stopper.start()
    try:
        started = time.monotonic()
        processed = service.run(stop)  # returns, does not raise: the run is stopping
        took = time.monotonic() - started
        stopper.join()
        assert 1 <= processed < 6 and recorder.frames == list(range(processed))  # the unfinished one is not published
        assert not worker.in_process and worker.fallback_reason is None  # no restart, no fallback at a stop
        assert took < 60.0, took  # half of any wait it was in: ample slack for a loaded machine
        assert worker.pid is None  # the waited-for child is killed at once
    finally:
        worker.close()


def test_tensor_signature_tells_quantisation_apart(posenet_dir: Path) -> None:
    backend = _in_process(posenet_dir / POSENET)
    same = _in_process(posenet_dir / POSENET)
    assert tensor_signature(backend) == tensor_signature(same)
    scale, zero_point = same.outputs[0]["quantization"]
    same.outputs[0]["quantization"] = (scale * 2, zero_point)
    assert tensor_signature(backend) != tensor_signature(same)
    other_zero = _in_process(posenet_dir / POSENET)
    other_zero.outputs[1]["quantization_parameters"]["zero_points"] = np.array([7], dtype=np.int32)
    assert tensor_signature(backend) != tensor_signature(other_zero)


def test_a_fallback_with_other_quantisation_does_not_take_over(posenet_dir: Path, clean_process: None) -> None:
    # A CPU model whose heatmaps are scaled differently would decode to other poses with PoseNet's stored
    # dequantisation: the worker refuses it and says why, rather than carry on with wrong numbers.
    path = posenet_dir / POSENET

    def other_quantisation() -> Backend:
        backend = _in_process(path)
        scale, zero_point = backend.outputs[0]["quantization"]
        backend.outputs[0]["quantization"] = (scale * 2, zero_point)
        return backend

    policy = WorkerPolicy(invoke_timeout_s=60.0, start_timeout_s=60.0, max_failures=1, backoff_s=0.01)
    spec = WorkerSpec(RUNTIME, path, delegate="cpu", test_abort_at=frozenset({1}))
    worker = WorkerBackend(spec, BackendInfo(RUNTIME, "edgetpu", 1, path.name), fallback=other_quantisation,
                           policy=policy)  # fmt: skip
    try:
        with pytest.raises(BackendUnavailableError, match="has other tensors"):
            worker.invoke()
        assert not worker.in_process
    finally:
        worker.close()
