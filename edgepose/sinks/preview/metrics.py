"""Prometheus metrics for the preview's ``/metrics`` (the only importer of prometheus_client).

Counters and gauges are read from :class:`~edgepose.health.PipelineStats` when scraped; only the
per-stage latency histograms are fed per frame. Everything lives in a registry of its own, never
the process-global one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from edgepose.errors import BackendUnavailableError
from edgepose.health import PipelineStats
from edgepose.pose import STAGES, BackendInfo, PoseResult
from edgepose.sinks.preview.hub import PreviewHub

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
except ImportError:
    raise BackendUnavailableError("/metrics needs prometheus-client: pip install 'edgepose[preview]'") from None

CONTENT_TYPE: str = CONTENT_TYPE_LATEST
#: Latency histogram buckets in seconds (1 ms … 2 s).
BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0)


class _StatsCollector:
    """Reads pipeline counters at scrape time."""

    def __init__(self, stats: PipelineStats, info: BackendInfo, hub: PreviewHub, refused: Mapping[str, int]) -> None:
        self._stats = stats
        self._info = info
        self._hub = hub
        self._refused = refused

    def collect(self) -> Iterator[Metric]:
        """Yield the current values."""
        stats = self._stats
        yield CounterMetricFamily("edgepose_frames", "Frames processed by the pipeline", value=stats.frames)
        yield CounterMetricFamily("edgepose_dropped_frames", "Frames the source delivered that were not processed",
                                  value=stats.dropped)  # fmt: skip
        yield GaugeMetricFamily("edgepose_fps", "Processed frames per second over the last seconds", value=stats.fps())
        age = stats.frame_age()
        if age is not None:
            yield GaugeMetricFamily("edgepose_frame_age_seconds", "Seconds since the last processed frame", value=age)
        yield GaugeMetricFamily("edgepose_idle", "1 while idle mode runs the model at a trickle, else 0",
                                value=1.0 if stats.mode == "idle" else 0.0)  # fmt: skip
        yield CounterMetricFamily("edgepose_source_reopens", "Times the source was opened again after a loss",
                                  value=stats.source.reopens)  # fmt: skip
        yield CounterMetricFamily("edgepose_decode_errors", "Frames of a live source that could not be decoded",
                                  value=stats.source.decode_errors)  # fmt: skip
        yield GaugeMetricFamily("edgepose_pose_score", "Score of the last pose (mean keypoint score)",
                                value=stats.last_score)  # fmt: skip
        yield GaugeMetricFamily("edgepose_people", "People in the last frame (poses scoring at least min_score)",
                                value=stats.people)  # fmt: skip
        yield CounterMetricFamily("edgepose_output_dropped_lines", "JSON lines dropped for a slow reader",
                                  value=stats.output.dropped)  # fmt: skip
        yield GaugeMetricFamily("edgepose_output_queued_bytes", "Bytes of JSON lines waiting for the writer",
                                value=stats.output.queued_bytes)  # fmt: skip
        if stats.mqtt_connected is not None:
            yield GaugeMetricFamily("edgepose_mqtt_connected", "1 while the MQTT client is connected, else 0",
                                    value=1.0 if stats.mqtt_connected else 0.0)  # fmt: skip
        clients = GaugeMetricFamily("edgepose_preview_clients", "Connected preview clients", labels=["endpoint"])
        for endpoint, count in dict(self._hub.clients).items():
            clients.add_metric([endpoint], count)
        yield clients
        yield CounterMetricFamily("edgepose_preview_dropped_clients", "Preview clients dropped for being too slow",
                                  value=self._hub.dropped_clients)  # fmt: skip
        yield CounterMetricFamily("edgepose_preview_skipped_frames", "Results preview stream clients did not get",
                                  value=self._hub.skipped_frames)  # fmt: skip
        yield CounterMetricFamily("edgepose_preview_jpeg_frames", "JPEG pictures encoded for the stream",
                                  value=self._hub.encoded)  # fmt: skip
        yield CounterMetricFamily("edgepose_preview_encode_errors", "Stream pictures that could not be made",
                                  value=self._hub.encode_errors)  # fmt: skip
        refused = CounterMetricFamily("edgepose_preview_refused_connections",
                                      "Connections answered 503 (busy), 408 (slow head), 414 or 431 (too large)",
                                      labels=["reason"])  # fmt: skip
        for reason, count in dict(self._refused).items():
            refused.add_metric([reason], count)
        yield refused
        yield from self._inference()

    def _inference(self) -> Iterator[Metric]:
        """Yield what runs the model now, the worker's restarts and its fallback to the CPU (with the reason)."""
        stats = self._stats
        info = stats.backend_info(self._info)
        yield InfoMetricFamily("edgepose_backend", "What runs the model",
                               value={k: str(v) for k, v in info.to_dict().items()})  # fmt: skip
        yield CounterMetricFamily("edgepose_inference_restarts", "Inference worker children restarted after a failure",
                                  value=stats.inference.restarts)  # fmt: skip
        reason = stats.inference.fallback_reason
        fallback = GaugeMetricFamily("edgepose_inference_fallback",
                                     "1 once the EdgeTPU worker gave up and the CPU runs the model, with the reason",
                                     labels=["reason"])  # fmt: skip
        fallback.add_metric([reason or ""], 1.0 if reason else 0.0)
        yield fallback


class PreviewMetrics:
    """The preview's metrics registry.

    Args:
        stats: Pipeline counters, read at scrape time.
        info: Backend description at start, exported as ``edgepose_backend_info`` while ``stats`` has no backend.
        hub: Preview state (client counts).
        refused: Connections the server refused, by reason (read at scrape time).
    """

    def __init__(self, stats: PipelineStats, info: BackendInfo, hub: PreviewHub, refused: Mapping[str, int]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StatsCollector(stats, info, hub, refused))
        latency = Histogram("edgepose_stage_latency_seconds", "Latency per pipeline stage", ["stage"],
                            buckets=BUCKETS, registry=self.registry)  # fmt: skip
        self._stages = {stage: latency.labels(stage) for stage in STAGES}

    def observe(self, result: PoseResult) -> None:
        """Add one result's stage latencies to the histograms."""
        for stage, ms in result.latency_ms.items():
            child = self._stages.get(stage)
            if child is not None:
                child.observe(ms / 1000.0)

    def render(self) -> bytes:
        """Return the exposition text."""
        return bytes(generate_latest(self.registry))
