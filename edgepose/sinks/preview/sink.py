"""The HTTP preview sink: a live page, MJPEG, JSON, Server-Sent Events, health and metrics.

``publish`` only hands the result to a :class:`~edgepose.sinks.preview.hub.PreviewHub` (O(1), no
I/O); HTTP threads and the hub's encoder thread do the rest. Private by default: it listens on
127.0.0.1 and then answers only requests addressed to this machine (the ``Host``/``Origin`` guard
against DNS rebinding), and refuses an address beyond loopback without a bearer token unless told
``insecure``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from edgepose.config import PreviewConfig
from edgepose.errors import BackendUnavailableError, ConfigError
from edgepose.pipeline.stats import PipelineStats
from edgepose.pose import BackendInfo, PoseResult
from edgepose.sinks.preview.guard import is_loopback
from edgepose.sinks.preview.hub import PreviewHub
from edgepose.sinks.preview.listener import Limits
from edgepose.sinks.preview.server import PreviewContext, PreviewServer

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: Name of the systemd credential holding the token (``LoadCredential=preview_token:…``).
CREDENTIAL_NAME = "preview_token"
#: Seconds ``close`` waits for event clients to receive what was published.
CLOSE_GRACE_S = 2.0


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``[HOST:]PORT`` into host and port; ``HOST`` may be ``[v6]``, empty means all interfaces.

    Raises:
        ConfigError: Not a valid address.
    """
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, value
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"--preview: write an IPv6 address in brackets, like [::1]:8080, not {text!r}")
    elif not host:
        host = "0.0.0.0"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--preview must be [HOST:]PORT with a port from 0 to 65535, not {text!r}")
    return host, int(port)


def resolve_token(cfg: PreviewConfig, environ: dict[str, str] | None = None) -> str:
    """Return the bearer token: ``token``, else ``token_file``, else the systemd credential, else ``""``.

    Raises:
        ConfigError: The token file cannot be read or is empty.
    """
    if cfg.token:
        return cfg.token.strip()
    env = os.environ if environ is None else environ
    path = Path(cfg.token_file).expanduser() if cfg.token_file else None
    if path is None and env.get("CREDENTIALS_DIRECTORY"):
        candidate = Path(env["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        path = candidate if candidate.is_file() else None
    if path is None:
        return ""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ConfigError(f"cannot read preview token file {path}: {reason}") from None
    if not token:
        raise ConfigError(f"preview token file {path} is empty")
    return token


class PreviewSink:
    """Serves the live preview while the pipeline runs.

    Args:
        cfg: The ``[preview]`` section.
        stats: Pipeline counters (fps, frame age, drops, MQTT state).
        info: What runs the model, shown on the page and in ``/metrics``.
        min_score: Keypoints below this score are not drawn.
        stale_after_s: ``/healthz`` answers 503 when the last frame is older than this.
    """

    def __init__(
        self, cfg: PreviewConfig, stats: PipelineStats, info: BackendInfo, min_score: float, stale_after_s: float
    ) -> None:
        self._cfg = cfg
        self._hub = PreviewHub(cfg.mode, min_score, cfg.fps)
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
        host, port = parse_listen(self._cfg.listen)
        token = resolve_token(self._cfg)
        if not is_loopback(host) and not token and not self._cfg.insecure:
            raise ConfigError(
                f"the preview would listen on {host}, beyond this machine, without a token: set --preview-token-file "
                "(or --preview-token), or pass --preview-insecure to allow anyone on the network to watch"
            )
        self._context.token = token
        # Without a token, a loopback address is all that keeps others out: so only requests that name
        # this machine are answered (a DNS-rebinding page names its own host). With a token, it decides.
        self._context.loopback_only = is_loopback(host) and not token
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

    def publish(self, result: PoseResult) -> None:
        """Hand the newest result to the HTTP side (O(1), never blocks on I/O)."""
        if self._observe is not None:
            self._observe(result)
        self._hub.publish(result)

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
