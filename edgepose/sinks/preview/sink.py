"""The HTTP preview sink: a live page, MJPEG, JSON, Server-Sent Events, health and metrics.

``publish`` only hands the result to a :class:`~edgepose.sinks.preview.hub.PreviewHub` (O(1), no
I/O); HTTP threads and the hub's encoder thread do the rest. Private by default: it listens on
127.0.0.1 and then answers only requests addressed to this machine (the ``Host``/``Origin`` guard
against DNS rebinding), and refuses an address beyond loopback without a bearer token unless told
``insecure``.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from edgepose.config import PreviewConfig, ZoneConfig
from edgepose.config.preview_access import check_access
from edgepose.errors import BackendUnavailableError, ConfigError
from edgepose.health import PipelineStats
from edgepose.pose import BackendInfo, PoseResult
from edgepose.sinks.drawing import shows_more
from edgepose.sinks.preview.hub import PreviewHub
from edgepose.sinks.preview.listener import Limits
from edgepose.sinks.preview.server import PreviewContext, PreviewServer

if TYPE_CHECKING:
    from edgepose.sinks.snapshot.sink import Snapshot, SnapshotSink

log = logging.getLogger(__name__)

#: Seconds ``close`` waits for event clients to receive what was published.
CLOSE_GRACE_S = 2.0


class PreviewSink:
    """Serves the live preview while the pipeline runs.

    Args:
        cfg: The ``[preview]`` section.
        stats: Pipeline counters (fps, frame age, drops, MQTT state).
        info: What runs the model, shown on the page and in ``/metrics``.
        min_score: Keypoints below this score are not drawn.
        stale_after_s: ``/healthz`` answers 503 when the last frame is older than this.
        zones: The ``[[zones]]`` the pictures outline.
    """

    def __init__(
        self,
        cfg: PreviewConfig,
        stats: PipelineStats,
        info: BackendInfo,
        min_score: float,
        stale_after_s: float,
        zones: Sequence[ZoneConfig] = (),
    ) -> None:
        self._cfg = cfg
        self._hub = PreviewHub(cfg.mode, min_score, cfg.fps, zones)
        self._context = PreviewContext(self._hub, stats, info, cfg.mode, min_score, "", stale_after_s)
        self._info = info
        self._server: PreviewServer | None = None
        self._thread: threading.Thread | None = None
        self._observe: Callable[[PoseResult], None] | None = None
        self.address: tuple[str, int] | None = None

    def start(self) -> None:
        """Check the token rules, bind the address and start serving.

        Raises:
            ConfigError: A bad address, a non-loopback address without a token (and not insecure),
                an unreadable token file, or an address that cannot be bound.
        """
        access = check_access(self._cfg)  # checked with the config already; the same rule for a sink built in code
        host, port, token = access.host, access.port, access.token
        self._context.token = token
        # Without a token, a loopback address is all that keeps others out: so only requests that name
        # this machine are answered (a DNS-rebinding page names its own host). With a token, it decides.
        self._context.loopback_only = access.loopback and not token
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        limits = Limits(max_connections=self._cfg.max_connections)
        try:
            self._server = PreviewServer((host, port), self._context, family, limits)
        except OSError as exc:
            raise ConfigError(f"the preview cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._context.metrics = self._metrics(self._server.refused)
        bound = self._server.server_address
        self.address = (str(bound[0]), int(bound[1]))
        bound_host, bound_port = self.address
        self._hub.start()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="edgepose-preview", daemon=True)  # fmt: skip
        self._thread.start()
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        log.info("preview on http://%s:%d/ (%s, mode %s, %g fps)", shown, bound_port,
                 "token required" if token else "no token", self._cfg.mode, self._cfg.fps)  # fmt: skip

    def _metrics(self, refused: dict[str, int]) -> tuple[Callable[[], bytes], str] | None:
        try:
            from edgepose.sinks.preview.metrics import CONTENT_TYPE, PreviewMetrics
        except BackendUnavailableError as exc:
            log.warning("%s; the rest of the preview works", exc)
            return None
        metrics = PreviewMetrics(self._context.stats, self._info, self._hub, refused)
        self._observe = metrics.observe
        return metrics.render, CONTENT_TYPE

    def attach_snapshots(self, snapshots: SnapshotSink) -> None:
        """Show the last snapshot on ``/snapshot.jpg`` and the page, unless it shows more than the preview's mode."""
        if shows_more(snapshots.draws, self._cfg.mode):
            note = f"snapshot.mode {snapshots.mode} shows more than preview.mode {self._cfg.mode}"
            self._context.snapshot_note = f"not shown here: {note}"
            log.info("preview: not showing snapshots: %s", note)
            return
        self._context.snapshot_note = "no snapshot yet"
        snapshots.subscribe(self._show_snapshot)

    def _show_snapshot(self, snapshot: Snapshot) -> None:
        """Keep the newest snapshot for the HTTP side (the snapshot thread; O(1))."""
        self._context.snapshot = snapshot

    def publish(self, result: PoseResult) -> None:
        """Hand the newest result to the HTTP side (O(1), never blocks on I/O)."""
        if self._observe is not None:
            self._observe(result)
        self._hub.publish(result)

    def alive(self) -> None:
        """Show "paused" and no pose while detection is off (the loop is alive without a frame; no I/O)."""
        if self._context.stats.paused:
            self._hub.pause()

    def close(self) -> None:
        """Let event clients receive what was published (briefly), end the streams and stop serving."""
        if self._server is None:
            return
        self._hub.close()
        context = self._context
        with context.cond:
            context.cond.wait_for(lambda: context.active == 0, CLOSE_GRACE_S)
        self._server.shutdown()
        self._server.server_close()
        self._server = None
