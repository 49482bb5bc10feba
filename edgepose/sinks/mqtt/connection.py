"""The MQTT sink's connection: the paho client, its callbacks on paho's network thread, the clean close.

The only module that imports paho. paho's network thread (``loop_start``) connects, reconnects with
exponential backoff and writes to the socket; the callbacks here keep the connection state, log a failure
once per reason and ask the worker to announce after every connection. ``send`` hands one message to paho,
or keeps it in the bounded outbox while disconnected (QoS 0 is dropped and counted there).

A slow link must not delay the answers: paho queues every publish in one unbounded FIFO in front of the
socket, and the kernel's send buffer (megabytes once Linux has tuned it) waits in front of the link, so
on a 4 KB/s link a pose stream would put minutes of poses in front of a ``person`` change and of the
keepalive ping. Both are bounded here: the socket keeps at most ``SOCKET_UNSENT_BYTES`` unsent
(``TCP_NOTSENT_LOWAT``), the rest waits in paho, where the QoS 0 bytes not yet written are counted
(:mod:`.backlog`); while the link is behind, new pose messages are skipped (counted in ``backlog_skipped``).
``person``, ``state``, ``event``, ``status`` and stats are never skipped and wait behind that bound only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from edgepose.config import MqttConfig
from edgepose.errors import BackendUnavailableError
from edgepose.health import PipelineStats
from edgepose.sinks.mqtt import homeassistant as ha
from edgepose.sinks.mqtt import topics as mt
from edgepose.sinks.mqtt.backlog import Backlog
from edgepose.sinks.mqtt.outbox import Message, MqttCounters, Outbox
from edgepose.sinks.mqtt.settings import BrokerSettings, tls_context

try:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
except ImportError:  # pragma: no cover - paho missing or 1.x
    raise BackendUnavailableError(
        "MQTT needs paho-mqtt 2.x: .venv/bin/pip install 'edgepose[mqtt]' (or: pip install 'paho-mqtt>=2,<3')"
    ) from None

#: Every line of the sink is logged under one name, whichever of its modules writes it (journald shows it).
log = logging.getLogger(__name__)

#: How long ``start()`` waits for the first connection attempt, so early frames are not dropped.
STARTUP_WAIT_S = 5.0
#: How often ``start()`` looks at the stop event while it waits for the broker.
STOP_POLL_S = 0.05
#: First reconnect delay; it doubles up to ``mqtt.reconnect_max_s``.
RECONNECT_MIN_S = 1
#: paho counts unacknowledged QoS 1 messages against its queue limit too; leave room for them.
INFLIGHT_HEADROOM = 100
#: Most unsent bytes the kernel keeps in the socket (``TCP_NOTSENT_LOWAT``; its send buffer elsewhere).
SOCKET_UNSENT_BYTES = 4 * 1024


class _DemoteIdleErrors(logging.Filter):
    """paho logs "Client is not connected" as an error on every wait between reconnects; demote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("Client is not connected"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return _PAHO_LOG.isEnabledFor(logging.DEBUG)
        return True


_PAHO_LOG = logging.getLogger(f"{__name__}.paho")
_PAHO_LOG.addFilter(_DemoteIdleErrors())


def time_left(deadline: float, reserve: float = 0.0) -> float:
    """Return the seconds left before ``deadline`` (``time.monotonic()``) minus ``reserve``, never negative."""
    return max(0.0, deadline - reserve - time.monotonic())


class Connection:
    """The sink's paho client: connecting, reconnecting, the Last Will and the clean disconnect.

    Args:
        cfg: The validated ``[mqtt]`` section (``url`` set).
        settings: The broker's address, credentials and TLS.
        topics: The sink's topics.
        stats: Pipeline health; ``mqtt_connected`` is kept up to date.
        counters: Where sent and dropped messages and reconnects are counted.
        on_connect: Called on paho's network thread after every connection and when Home Assistant
            comes online: the worker then sends discovery, the queued messages, the state and stats.
        on_command: Called on paho's network thread with ``(name, payload, retained)`` for each message on
            the device's own command topics ``<base>/set/<name>`` (``None``: no commands, no subscription).
    """

    def __init__(self, cfg: MqttConfig, settings: BrokerSettings, topics: mt.Topics, stats: PipelineStats,
                 counters: MqttCounters, on_connect: Callable[[], None],
                 on_command: Callable[[str, bytes, bool], None] | None = None) -> None:  # fmt: skip
        self._cfg = cfg
        self._settings = settings
        self._topics = topics
        self._stats = stats
        self._counters = counters
        self._on_connected = on_connect
        self._on_command = on_command
        self._outbox = Outbox(cfg.queue_size, counters)
        self._connected = threading.Event()
        self._attempted = threading.Event()
        self._closing = False
        self._ever_connected = False
        self._lost_at: float | None = None
        self._last_failure = ""
        self._client: paho.Client | None = None
        self._backlog = Backlog()  # QoS 0 handed to paho and not written yet (worker thread)
        self._sockets_opened = 0  # by paho, which drops its queue with each new socket (network thread)
        self._backlog_socket = 0  # the socket ``_backlog`` belongs to (worker thread)

    @property
    def opened(self) -> bool:
        """Whether ``open()`` ran and ``close()`` has not."""
        return self._client is not None

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection and it has not been lost since."""
        return self._connected.is_set()

    @property
    def queued(self) -> int:
        """QoS 1 messages waiting for a connection."""
        return len(self._outbox)

    @property
    def unsent_bytes(self) -> int:
        """QoS 0 bytes handed to paho and not yet written to the socket (any thread; may be a moment old)."""
        if self._backlog_socket != self._sockets_opened:
            return 0
        return self._backlog.unsent()

    def open(self) -> None:
        """Configure the client and start connecting on paho's network thread.

        Raises:
            ConfigError: TLS files that cannot be loaded.
        """
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"edgepose-{self._topics.device}",
                             protocol=paho.MQTTv311, clean_session=True)  # fmt: skip
        client.enable_logger(_PAHO_LOG)
        client.suppress_exceptions = True
        if self._settings.username:
            client.username_pw_set(self._settings.username, self._settings.password)
        if self._settings.tls:
            client.tls_set_context(tls_context(self._settings))
        client.will_set(self._topics.status, mt.OFFLINE, qos=1, retain=True)
        max_delay = max(RECONNECT_MIN_S, math.ceil(self._cfg.reconnect_max_s))
        client.reconnect_delay_set(RECONNECT_MIN_S, max_delay)
        client.max_queued_messages_set(self._cfg.queue_size + INFLIGHT_HEADROOM)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        self._client = client
        self._stats.mqtt_connected = False
        client.connect_async(self._settings.host, self._settings.port, keepalive=self._cfg.keepalive_s)
        client.loop_start()

    def wait_for_first_attempt(self, stop: threading.Event | None) -> None:
        """Wait up to ``STARTUP_WAIT_S`` for the first connection attempt, or until ``stop`` is set."""
        deadline = time.monotonic() + STARTUP_WAIT_S
        while not self._attempted.wait(min(STOP_POLL_S, max(0.0, deadline - time.monotonic()))):
            if stop is not None and stop.is_set():
                log.info("MQTT: stop requested while connecting to %s; not waiting for it", self._settings.url)
                return
            if time.monotonic() >= deadline:
                log.warning("MQTT: still connecting to %s; carrying on, messages follow once connected",
                            self._settings.url)  # fmt: skip
                return

    def send(self, msg: Message) -> Callable[[], bool] | None:
        """Hand ``msg`` to paho, or keep it in the outbox while disconnected; count what happens to it.

        Returns:
            Whether the broker has it now (QoS 1: acknowledged), to ask later; ``None`` when it was not
            handed to paho on a connection.
        """
        if self._client is None:
            return None
        if not self._connected.is_set():
            self._outbox.hold(msg)
            return None
        if msg.qos == 0 and msg.topic == self._topics.pose and self._link_is_behind():
            self._counters.backlog_skipped += 1
            return None
        info = self._client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        if msg.qos == 0 and info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._backlog.add(info.is_published, len(msg.topic) + len(msg.payload))
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (msg.qos and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._counters.sent += 1  # QoS 1 without a connection stays in paho's session and is resent
        elif msg.qos:
            self._counters.queue_dropped += 1
        else:
            self._counters.dropped += 1
        return info.is_published if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def _link_is_behind(self) -> bool:
        """Whether the link is behind with the QoS 0 messages (:meth:`.Backlog.behind`) on the current socket."""
        if self._backlog_socket != self._sockets_opened:  # paho dropped its queue with the old socket
            self._backlog_socket = self._sockets_opened
            self._backlog.reset()
        return self._backlog.behind()

    def flush(self) -> None:
        """Send the messages queued while disconnected, oldest first, as long as the connection lasts."""
        while self._connected.is_set() and (msg := self._outbox.pop()) is not None:
            self.send(msg)

    def close(self, deadline: float, stop_reserve: float) -> None:
        """Publish ``offline``, disconnect cleanly and stop the network thread, all before ``deadline``.

        Args:
            deadline: When this must be done (``time.monotonic()``). What is left undone is logged; the
                broker then publishes the Last Will ``offline`` itself.
            stop_reserve: Seconds before the deadline kept for stopping the network thread.
        """
        client = self._client
        if client is None:
            return
        if self._outbox:
            log.warning("MQTT: %d queued message(s) not delivered: not connected", len(self._outbox))
        self._closing = True
        if self._connected.is_set():
            info = client.publish(self._topics.status, mt.OFFLINE, qos=1, retain=True)
            acknowledged = False
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(time_left(deadline, stop_reserve))
                acknowledged = info.is_published()
            if not acknowledged:
                log.warning("MQTT: the broker did not acknowledge 'offline' before the close deadline")
        client.disconnect()
        stopper = threading.Thread(target=client.loop_stop, name="edgepose-mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(time_left(deadline))
        if stopper.is_alive():
            log.warning("MQTT: network thread still busy at the close deadline; leaving it behind")
        self._connected.clear()
        self._stats.mqtt_connected = False
        self._client = None

    # --- paho callbacks (network thread) -----------------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._attempted.set()
        if reason.is_failure:
            hint = " (check the user in the url and the password file)" if "author" in str(reason).lower() else ""
            self._report_failure(f"{reason}{hint}")
            return
        if self._ever_connected:
            self._counters.reconnects += 1
            offline = f" after {time.monotonic() - self._lost_at:.1f} s offline" if self._lost_at else ""
            log.info("MQTT: reconnected to %s%s", self._settings.url, offline)
        else:
            log.info("MQTT: connected to %s", self._settings.url)
        self._ever_connected = True
        self._last_failure = ""
        self._connected.set()
        self._stats.mqtt_connected = True
        # Not current until the worker says so: Home Assistant keeps the answers unavailable meanwhile,
        # whatever the last process left retained (no "off" a restart only assumed).
        client.publish(self._topics.analysis, mt.OFFLINE, qos=1, retain=True)
        client.publish(self._topics.status, mt.ONLINE, qos=1, retain=True)
        if self._cfg.ha_discovery:
            client.subscribe(ha.HA_STATUS_TOPIC, qos=1)
        if self._on_command is not None:
            client.subscribe(self._topics.commands, qos=1)
        self._on_connected()

    def _on_socket_open(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        """Keep the kernel from queueing more than ``SOCKET_UNSENT_BYTES`` in front of the link."""
        self._sockets_opened += 1
        option = getattr(socket, "TCP_NOTSENT_LOWAT", None)
        try:
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, SOCKET_UNSENT_BYTES)
            else:  # pragma: no cover - not on Linux
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_UNSENT_BYTES)
        except OSError as exc:  # pragma: no cover - a socket without these options
            log.debug("MQTT: cannot bound the socket's send queue: %s", exc)

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        self._attempted.set()
        exc = sys.exc_info()[1]  # paho calls this from inside its ``except OSError``
        self._report_failure(f"{type(exc).__name__}: {exc}" if exc else "connection failed")

    def _on_disconnect(self, _client: paho.Client, _data: Any, _flags: Any, reason: Any, _props: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._stats.mqtt_connected = False
        if was_connected and not self._closing:
            self._lost_at = time.monotonic()
            log.warning("MQTT: connection to %s lost (%s); reconnecting with backoff up to %g s",
                        self._settings.url, reason, self._cfg.reconnect_max_s)  # fmt: skip

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        name = self._topics.command_name(message.topic)
        if name is not None and self._on_command is not None:
            self._on_command(name, bytes(message.payload), bool(message.retain))
            return
        ha_online = message.topic == ha.HA_STATUS_TOPIC and bytes(message.payload) == mt.ONLINE.encode()
        if ha_online and not message.retain:
            log.info("MQTT: Home Assistant came online; re-publishing discovery")
            self._on_connected()

    def _report_failure(self, reason: str) -> None:
        """Log a connection failure once per distinct reason (repeats at debug level)."""
        level = logging.DEBUG if reason == self._last_failure else logging.WARNING
        self._last_failure = reason
        log.log(level, "MQTT: cannot connect to %s: %s; retrying with backoff up to %g s",
                self._settings.url, reason, self._cfg.reconnect_max_s)  # fmt: skip
