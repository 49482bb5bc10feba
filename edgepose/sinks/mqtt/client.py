"""The MQTT sink: pose, status, person, state, event and stats messages plus Home Assistant discovery.

The only module that imports paho. Three threads are involved and none of them is the inference loop:
``publish`` only puts a result into a bounded inbox (dropping with a counter when it is full); a worker
thread turns results into messages and hands them to paho; paho's network thread (``loop_start``)
connects, reconnects with exponential backoff and writes to the socket.

While disconnected, QoS 0 messages (pose, stats) are dropped and counted; QoS 1 messages (person and
analytics state changes, analytics events) wait in a bounded queue (``mqtt.queue_size``, oldest dropped
first) and are sent after the next connection, together with the status, the discovery configs and fresh
stats. A person or state change that the full inbox refused is offered again with the next frame, so the
retained state cannot stay wrong.
People-count changes are not queued while offline (they can flicker): the current count is sent after
every connection and with every stats message, like the person state.

Neither end of the sink can hold up a stop: ``start()`` waits at most ``STARTUP_WAIT_S`` for the broker
and returns as soon as the run's stop event is set; ``close(timeout_s)`` finishes within one deadline,
however the broker behaves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from edgepose.config import MqttConfig
from edgepose.doctor.hardware import cpu_temperature
from edgepose.errors import BackendUnavailableError
from edgepose.pipeline.stats import PipelineStats
from edgepose.pose import BackendInfo, PoseResult
from edgepose.sinks.mqtt import homeassistant as ha
from edgepose.sinks.mqtt import topics as mt
from edgepose.sinks.mqtt.outbox import Message, MqttCounters, Outbox
from edgepose.sinks.mqtt.settings import BrokerSettings, broker_settings, device_id, tls_context

try:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
except ImportError:  # pragma: no cover - paho missing or 1.x
    raise BackendUnavailableError(
        "MQTT needs paho-mqtt 2.x: .venv/bin/pip install 'edgepose[mqtt]' (or: pip install 'paho-mqtt>=2,<3')"
    ) from None

log = logging.getLogger(__name__)

#: How long ``start()`` waits for the first connection attempt, so early frames are not dropped.
STARTUP_WAIT_S = 5.0
#: How often ``start()`` looks at the stop event while it waits for the broker.
STOP_POLL_S = 0.05
#: Default total time ``close()`` may take: flushing the worker, the ``offline`` acknowledgement and
#: stopping the network thread all share this one deadline.
CLOSE_TIMEOUT_S = 5.0
#: Part of the close budget kept for stopping the network thread (it sends DISCONNECT).
CLOSE_STOP_SHARE = 0.2
#: Results waiting for the worker; beyond this ``publish`` drops (the worker is stuck).
INBOX_SIZE = 1024
#: First reconnect delay; it doubles up to ``mqtt.reconnect_max_s``.
RECONNECT_MIN_S = 1
#: paho counts unacknowledged QoS 1 messages against its queue limit too; leave room for them.
INFLIGHT_HEADROOM = 100
#: Longest the worker sleeps before it looks for an announce request.
POLL_S = 0.5

_END = object()
_WAKE = object()


@dataclasses.dataclass(frozen=True)
class _People:
    """A change of the people count, on its way to the worker."""

    count: int


class _DemoteIdleErrors(logging.Filter):
    """paho logs "Client is not connected" as an error on every wait between reconnects; demote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("Client is not connected"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return _PAHO_LOG.isEnabledFor(logging.DEBUG)
        return True


_PAHO_LOG = logging.getLogger("edgepose.mqtt.paho")
_PAHO_LOG.addFilter(_DemoteIdleErrors())


class MqttSink:
    """Publishes results to an MQTT broker without ever blocking the caller.

    Args:
        cfg: The validated ``[mqtt]`` section (``url`` set).
        stats: Pipeline health, read for stats messages; ``mqtt_connected`` is kept up to date.
        info: What runs the model (in stats and discovery).
        min_score: Pose score from which a person counts as present, for results without analytics state
            (with it, ``state["present"]`` decides: the presence hysteresis).
        environ: Where ``CREDENTIALS_DIRECTORY`` is looked up (default: ``os.environ``).
        stop: The run's stop event: ``start()`` stops waiting for the broker as soon as it is set.

    Raises:
        ConfigError: Unreadable password file or a password without a user.
    """

    def __init__(self, cfg: MqttConfig, stats: PipelineStats, info: BackendInfo, min_score: float,
                 environ: Mapping[str, str] | None = None, stop: threading.Event | None = None) -> None:  # fmt: skip
        self._cfg = cfg
        self._stop = stop
        self._stats = stats
        self._info = info
        self._min_score = min_score
        self.settings: BrokerSettings = broker_settings(cfg, os.environ if environ is None else environ)
        self.topics = mt.Topics(cfg.prefix, device_id(cfg))
        self.counters = MqttCounters()
        self._inbox: queue.Queue[object] = queue.Queue(maxsize=INBOX_SIZE)
        self._outbox = Outbox(cfg.queue_size, self.counters)
        self._connected = threading.Event()
        self._attempted = threading.Event()
        self._announce = threading.Event()
        self._closing = False
        self._ever_connected = False
        self._lost_at: float | None = None
        self._last_failure = ""
        self._present: bool | None = None  # as last queued by publish()
        self._state: bool | None = None  # as last published by the worker
        self._people: int | None = None  # as last seen by publish()
        self._people_state: int | None = None  # as last handled by the worker
        self._analytics: dict[str, Any] | None = None  # the analytics state, as last seen by publish()
        self._analytics_msg: Message | None = None  # ... and as last published by the worker
        self._min_interval = 1.0 / cfg.max_rate if cfg.max_rate > 0 else 0.0
        self._last_pose_at = -math.inf
        self._client: paho.Client | None = None
        self._worker = threading.Thread(target=self._work, name="edgepose-mqtt", daemon=True)

    # --- the Sink protocol -------------------------------------------------------------------------

    def start(self) -> None:
        """Configure the client, start connecting in the background and wait briefly for the broker.

        The wait (at most ``STARTUP_WAIT_S``) ends early when the stop event is set.

        Raises:
            ConfigError: TLS files that cannot be loaded.
        """
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"edgepose-{self.topics.device}",
                             protocol=paho.MQTTv311, clean_session=True)  # fmt: skip
        client.enable_logger(_PAHO_LOG)
        client.suppress_exceptions = True
        if self.settings.username:
            client.username_pw_set(self.settings.username, self.settings.password)
        if self.settings.tls:
            client.tls_set_context(tls_context(self.settings))
        client.will_set(self.topics.status, mt.OFFLINE, qos=1, retain=True)
        max_delay = max(RECONNECT_MIN_S, math.ceil(self._cfg.reconnect_max_s))
        client.reconnect_delay_set(RECONNECT_MIN_S, max_delay)
        client.max_queued_messages_set(self._cfg.queue_size + INFLIGHT_HEADROOM)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        self._stats.mqtt_connected = False
        client.connect_async(self.settings.host, self.settings.port, keepalive=self._cfg.keepalive_s)
        client.loop_start()
        self._worker.start()
        log.info("MQTT: publishing to %s as %s", self.settings.url, self.topics.base)
        if self.settings.password_in_url:
            log.warning("MQTT: the password is in the url, where ps and config files show it; "
                        "use --mqtt-password-file or systemd LoadCredential=mqtt_password instead")  # fmt: skip
        self._wait_for_first_attempt()

    def _wait_for_first_attempt(self) -> None:
        """Wait up to ``STARTUP_WAIT_S`` for the first connection attempt, or until the stop event is set."""
        deadline = time.monotonic() + STARTUP_WAIT_S
        while not self._attempted.wait(min(STOP_POLL_S, max(0.0, deadline - time.monotonic()))):
            if self._stop is not None and self._stop.is_set():
                log.info("MQTT: stop requested while connecting to %s; not waiting for it", self.settings.url)
                return
            if time.monotonic() >= deadline:
                log.warning("MQTT: still connecting to %s; carrying on, messages follow once connected",
                            self.settings.url)  # fmt: skip
                return

    def publish(self, result: PoseResult) -> None:
        """Queue a result for the worker; never blocks (drops and counts when the inbox is full)."""
        state = result.state
        present = bool(state["present"]) if state is not None else result.score >= self._min_score
        if present != self._present and self._put(present):
            self._present = present  # only once queued: a change lost to a full inbox is retried next frame
        people = result.people(self._min_score)
        if people != self._people and self._put(_People(people)):
            self._people = people  # only once queued, like the person state
        if (
            state is not None
            and state != self._analytics
            and self._put(Message(self.topics.state, mt.state_payload(state), 1, True))
        ):
            self._analytics = dict(state)  # likewise retried when the inbox was full
        for event in result.events:
            self._put(Message(self.topics.event, mt.event_payload(event), 1, False))
        if self._cfg.only_person and not present:
            return
        if self._min_interval:
            now = time.monotonic()
            if now - self._last_pose_at < self._min_interval:
                self.counters.rate_limited += 1
                return
            self._last_pose_at = now
        self._put(dataclasses.replace(result, image=None))

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Send what was accepted, publish ``offline``, disconnect cleanly and stop the threads.

        Args:
            timeout_s: Total time this may take, whatever the broker does: flushing the worker, waiting
                for the broker to acknowledge ``offline`` and stopping the network thread share this one
                deadline (a part is kept for the last step). What is left undone is logged; the broker
                then publishes the Last Will ``offline`` itself.
        """
        client = self._client
        if client is None:
            return
        deadline = time.monotonic() + max(0.0, timeout_s)
        stop_reserve = CLOSE_STOP_SHARE * max(0.0, timeout_s)

        def left(reserve: float = 0.0) -> float:
            return max(0.0, deadline - reserve - time.monotonic())

        if self._worker.is_alive():
            try:
                self._inbox.put(_END, timeout=left(stop_reserve))
            except queue.Full:
                log.warning("MQTT: worker stuck; closing without flushing")
            self._worker.join(left(stop_reserve))
        if self._outbox:
            log.warning("MQTT: %d queued message(s) not delivered: not connected", len(self._outbox))
        self._closing = True
        if self._connected.is_set():
            info = client.publish(self.topics.status, mt.OFFLINE, qos=1, retain=True)
            acknowledged = False
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(left(stop_reserve))
                acknowledged = info.is_published()
            if not acknowledged:
                log.warning("MQTT: the broker did not acknowledge 'offline' before the close deadline")
        client.disconnect()
        stopper = threading.Thread(target=client.loop_stop, name="edgepose-mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(left())
        if stopper.is_alive():
            log.warning("MQTT: network thread still busy at the close deadline; leaving it behind")
        self._connected.clear()
        self._stats.mqtt_connected = False
        self._client = None
        c = self.counters
        log.info("MQTT: closed; %d sent, %d dropped offline, %d rate-limited",
                 c.sent, c.dropped, c.rate_limited)  # fmt: skip

    def depths(self) -> dict[str, int]:
        """Return the queue depths published in stats.

        ``queued``: QoS 1 messages waiting for a connection; ``inbox``: results waiting for the worker.
        """
        return {"queued": len(self._outbox), "inbox": self._inbox.qsize()}

    # --- worker thread -----------------------------------------------------------------------------

    def _put(self, item: object) -> bool:
        """Queue ``item`` for the worker; return whether it was queued (else it is counted as overflow)."""
        try:
            self._inbox.put_nowait(item)
        except queue.Full:
            self.counters.overflow += 1
            return False
        return True

    def _work(self) -> None:
        interval = self._cfg.stats_interval_s
        next_stats = time.monotonic() + interval
        while True:
            if self._announce.is_set():
                self._announce.clear()
                self._guard(self._send_announce)
            now = time.monotonic()
            if now >= next_stats:
                next_stats = now + interval
                self._guard(self._send_state)
            try:
                item = self._inbox.get(timeout=min(POLL_S, max(0.0, next_stats - now)))
            except queue.Empty:
                continue
            if item is _END:
                break
            if isinstance(item, PoseResult):
                self._guard(self._send, Message(self.topics.pose, mt.pose_payload(item), 0, False))
            elif isinstance(item, bool):
                self._state = item
                self._guard(self._send, Message(self.topics.person, mt.person_payload(item), 1, True))
            elif isinstance(item, _People):
                self._people_state = item.count
                if self._connected.is_set():
                    self._guard(self._send, self._people_message())
            elif isinstance(item, Message):
                if item.topic == self.topics.state:
                    self._analytics_msg = item
                self._guard(self._send, item)
        self._guard(self._send_state)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        """Run one worker step; an unexpected error is logged, never fatal."""
        try:
            fn(*args)
        except Exception as exc:
            log.warning("MQTT: %s failed: %s: %s", getattr(fn, "__name__", "step"), type(exc).__name__, exc)

    def _send(self, msg: Message) -> None:
        if self._client is None:
            return
        if not self._connected.is_set():
            self._outbox.hold(msg)
            return
        info = self._client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (msg.qos and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN):
            self.counters.sent += 1  # QoS 1 without a connection stays in paho's session and is resent
        elif msg.qos:
            self.counters.queue_dropped += 1
        else:
            self.counters.dropped += 1

    def _send_announce(self) -> None:
        """After every (re)connect: discovery, the queued messages, the person state and stats."""
        if self._cfg.ha_discovery:
            for topic, payload in ha.discovery_configs(
                self.topics, self._info, self._cfg.stats_interval_s, self._cfg.only_person, self._cfg.max_rate
            ):
                self._send(Message(topic, payload, 1, True))
        while self._connected.is_set() and (msg := self._outbox.pop()) is not None:
            self._send(msg)
        self._send_state()

    def _people_message(self) -> Message:
        return Message(self.topics.people, mt.people_payload(self._people_state or 0), 1, True)

    def _send_state(self) -> None:
        """Send the periodic messages: person, people count and analytics state (keep ``expire_after`` fresh), stats."""
        if self._state is not None and self._connected.is_set():
            self._send(Message(self.topics.person, mt.person_payload(self._state), 1, True))
        if self._people_state is not None and self._connected.is_set():
            self._send(self._people_message())
        if self._analytics_msg is not None and self._connected.is_set():
            self._send(self._analytics_msg)
        counters = {**dataclasses.asdict(self.counters), **self.depths()}
        payload = mt.stats_payload(self.topics.device, self._stats.snapshot(), self._info, counters,
                                   cpu_temperature())  # fmt: skip
        self._send(Message(self.topics.stats, payload, 0, True))

    # --- paho callbacks (network thread) -----------------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._attempted.set()
        if reason.is_failure:
            hint = " (check the user in the url and the password file)" if "author" in str(reason).lower() else ""
            self._report_failure(f"{reason}{hint}")
            return
        if self._ever_connected:
            self.counters.reconnects += 1
            offline = f" after {time.monotonic() - self._lost_at:.1f} s offline" if self._lost_at else ""
            log.info("MQTT: reconnected to %s%s", self.settings.url, offline)
        else:
            log.info("MQTT: connected to %s", self.settings.url)
        self._ever_connected = True
        self._last_failure = ""
        self._connected.set()
        self._stats.mqtt_connected = True
        client.publish(self.topics.status, mt.ONLINE, qos=1, retain=True)
        if self._cfg.ha_discovery:
            client.subscribe(ha.HA_STATUS_TOPIC, qos=1)
        self._request_announce()

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
                        self.settings.url, reason, self._cfg.reconnect_max_s)  # fmt: skip

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        ha_online = message.topic == ha.HA_STATUS_TOPIC and bytes(message.payload) == mt.ONLINE.encode()
        if ha_online and not message.retain:
            log.info("MQTT: Home Assistant came online; re-publishing discovery")
            self._request_announce()

    def _request_announce(self) -> None:
        self._announce.set()
        with contextlib.suppress(queue.Full):  # a full inbox wakes the worker anyway
            self._inbox.put_nowait(_WAKE)

    def _report_failure(self, reason: str) -> None:
        """Log a connection failure once per distinct reason (repeats at debug level)."""
        level = logging.DEBUG if reason == self._last_failure else logging.WARNING
        self._last_failure = reason
        log.log(level, "MQTT: cannot connect to %s: %s; retrying with backoff up to %g s",
                self.settings.url, reason, self._cfg.reconnect_max_s)  # fmt: skip
