"""After the EdgeTPU worker falls back to the CPU, every output says so: MQTT stats and discovery, the
preview's page data and ``/metrics``, and systemd's ``STATUS=``.

The real loop, a real mosquitto, real HTTP and a real AF_UNIX datagram socket for sd_notify; only the
EdgeTPU is a stand-in: a worker child that runs the CPU kernels under the EdgeTPU's name and model file
and aborts from a chosen request on (the worker's test hook), so the worker falls back to in-process
XNNPACK as it would on a wedged Coral.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker, Subscriber, free_port
from conftest import LIGHTNING, LIGHTNING_EDGETPU, eventually

from edgepose.config import MqttConfig, PreviewConfig, SourceConfig
from edgepose.health import PipelineStats
from edgepose.inference.families.movenet.estimator import MoveNetEstimator, still_invokes
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.inference.worker.facade import WorkerBackend
from edgepose.inference.worker.policy import WorkerPolicy
from edgepose.inference.worker.process import WorkerSpec
from edgepose.manifest import ModelFiles
from edgepose.pipeline.loop import Service, ServiceOptions
from edgepose.pose import BackendInfo
from edgepose.sinks import close_all
from edgepose.sinks.notify import Notifier, NotifySink
from edgepose.sources import open_source

RUNTIME = "ai_edge_litert"
DEVICE = "fallback"
#: The discovery config of one entity (every entity carries the same device block).
FPS_CONFIG = f"homeassistant/sensor/edgepose_{DEVICE}/fps/config"
STATS = f"edgepose/{DEVICE}/stats"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


def _datagrams(sock: socket.socket) -> list[list[str]]:
    """Every notification waiting on the socket, as lists of ``KEY=VALUE`` fields."""
    found = []
    while True:
        try:
            found.append(sock.recv(65536).decode().split("\n"))
        except BlockingIOError:
            return found


def _get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        body: bytes = resp.read()
        return body


def _device_model(payload: bytes) -> str:
    model: str = json.loads(payload)["device"]["model"]
    return model


@pytest.mark.slow
def test_every_output_reports_the_cpu_after_a_fallback(
    broker: Broker, lightning_path: Path, testdata: Path, tmp_path: Path
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from edgepose.sinks.mqtt.client import MqttSink
    from edgepose.sinks.preview.sink import PreviewSink

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(4):
        (photos / f"{index:03d}.bmp").write_bytes((testdata / "squat.bmp").read_bytes())
    # The first photo runs in the child (still_invokes requests); from the next request on every child
    # aborts: one restart, the second failure in a row gives up, and in-process XNNPACK takes over.
    policy = WorkerPolicy(invoke_timeout_s=60.0, start_timeout_s=60.0, max_failures=2, backoff_s=0.01)
    failing = frozenset(range(still_invokes("flip") + 1, 1000))
    spec = WorkerSpec(RUNTIME, lightning_path, delegate="cpu", test_abort_at=failing)
    edgetpu = BackendInfo(RUNTIME, "edgetpu", 1, LIGHTNING_EDGETPU)
    cpu = BackendRequest(runtime=RUNTIME, delegate="xnnpack", threads=1)
    files = ModelFiles("lightning", lightning_path, None)
    worker = WorkerBackend(spec, edgetpu, policy=policy, fallback=lambda: open_backend(files, cpu))
    stats = PipelineStats()
    stats.inference = worker
    notify_path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.setblocking(False)
    subscriber = Subscriber(broker.port, ("homeassistant/#", f"edgepose/{DEVICE}/#"))
    port = free_port()
    mqtt_cfg = MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}", device_id=DEVICE, ha_discovery=True,
                          stats_interval_s=0.2)  # fmt: skip
    sinks = [
        MqttSink(mqtt_cfg, stats, edgetpu, 0.2, environ={}),
        PreviewSink(PreviewConfig(listen=f"127.0.0.1:{port}"), stats, edgetpu, 0.2, 60.0),
        NotifySink(Notifier(notify_path), stats, edgetpu),
    ]
    try:
        for sink in sinks:
            sink.start()
        # Before the fallback everything names the EdgeTPU.
        assert eventually(lambda: any("on edgetpu" in _device_model(p) for p in subscriber.on(FPS_CONFIG)))
        service = Service(open_source(str(photos), SourceConfig()), MoveNetEstimator(worker), sinks,
                          ServiceOptions(), stats)  # fmt: skip
        assert service.run(threading.Event()) == 4
        assert worker.in_process and worker.restarts == 1 and worker.fallback_reason is not None
        reason = worker.fallback_reason

        # MQTT: stats name the CPU, with the restart and the reason; discovery is announced again.
        def cpu_stats() -> bool:
            last = subscriber.on(STATS)[-1:] if subscriber.on(STATS) else []
            return bool(last) and json.loads(last[0])["delegate"] == "xnnpack"

        assert eventually(cpu_stats)
        data = json.loads(subscriber.on(STATS)[-1])
        assert data["model"] == LIGHTNING and data["inference"] == {"restarts": 1, "fallback": reason}
        assert eventually(lambda: _device_model(subscriber.on(FPS_CONFIG)[-1]).endswith(f"({LIGHTNING} on xnnpack)"))
        models = [_device_model(p) for p in subscriber.on(FPS_CONFIG)]
        assert models[0].endswith(f"({LIGHTNING_EDGETPU} on edgetpu)")

        # The preview: the page's data (/pose) and /metrics.
        backend = json.loads(_get(port, "/pose"))["backend"]
        assert backend["delegate"] == "xnnpack" and backend["model"] == LIGHTNING
        families = {f.name: f for f in text_string_to_metric_families(_get(port, "/metrics").decode())}
        (info,) = families["edgepose_backend_info"].samples
        assert info.labels["delegate"] == "xnnpack" and info.labels["model"] == LIGHTNING
        (restarts,) = families["edgepose_inference_restarts"].samples
        assert restarts.value == 1
        (fallback,) = families["edgepose_inference_fallback"].samples
        assert fallback.value == 1 and fallback.labels["reason"] == reason

        # systemd: STATUS= named the EdgeTPU at first, the CPU and the reason right after the fallback.
        statuses = [f[7:] for fields in _datagrams(listener) for f in fields if f.startswith("STATUS=")]
        assert "on edgetpu" in statuses[0]
        assert "delegate edgetpu" in statuses[1]  # the first frame, in the child
        assert "delegate xnnpack" in statuses[-1] and reason in statuses[-1]
    finally:
        close_all(sinks)
        subscriber.close()
        listener.close()
        worker.close()
