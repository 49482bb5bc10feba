"""The MQTT sink: pose, status, person, state, event and stats messages plus Home Assistant discovery.

Three threads are involved and none of them is the inference loop: ``publish`` only puts a result into a
bounded inbox (dropping with a counter when it is full); a worker thread (``worker.py``) turns results into
messages and hands them to paho; paho's network thread (``connection.py``, the only module that imports
paho) connects, reconnects with exponential backoff and writes to the socket.

While disconnected, QoS 0 messages (pose, stats) are dropped and counted; QoS 1 messages (person and
analytics state changes, analytics events) wait in a bounded queue (``mqtt.queue_size``, oldest dropped
first) and are sent after the next connection, together with the status, the discovery configs and fresh
stats. A person or state change that the full inbox refused is offered again with the next frame, so the
retained state cannot stay wrong.
People-count changes are not queued while offline (they can flicker): the current count is sent after
every connection and with every stats message, like the person state.

After each start of analysis (the first frame, a pause, a lost camera) presence, people and state wait
until the presence has decided on the new frames (:mod:`.liveness`); ``<base>/analysis`` tells Home
Assistant when they are current. Commands on ``<base>/set/<name>`` go to the device's
:class:`~edgepose.control.Controls`; a malformed, unknown or retained one is one warning and ignored.

Neither end of the sink can hold up a stop: ``start()`` waits at most ``STARTUP_WAIT_S`` for the broker
and returns as soon as the run's stop event is set; ``close(timeout_s)`` finishes within one deadline,
however the broker behaves.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edgepose.config import MqttConfig
from edgepose.control import CommandError
from edgepose.health import PipelineStats
from edgepose.pose import BackendInfo, PoseResult
from edgepose.sinks.mqtt import topics as mt
from edgepose.sinks.mqtt.announce import Device
from edgepose.sinks.mqtt.connection import (
    INFLIGHT_HEADROOM,
    RECONNECT_MIN_S,
    STARTUP_WAIT_S,
    STOP_POLL_S,
    Connection,
)
from edgepose.sinks.mqtt.liveness import Live, Settling
from edgepose.sinks.mqtt.outbox import Message, MqttCounters
from edgepose.sinks.mqtt.settings import BrokerSettings, broker_settings, device_id
from edgepose.sinks.mqtt.summary import Summary
from edgepose.sinks.mqtt.worker import INBOX_SIZE, POLL_S, People, Worker

if TYPE_CHECKING:
    from edgepose.sinks.snapshot.sink import Snapshot, SnapshotSink

__all__ = [
    "CLOSE_STOP_SHARE",
    "CLOSE_TIMEOUT_S",
    "INBOX_SIZE",
    "INFLIGHT_HEADROOM",
    "POLL_S",
    "RECONNECT_MIN_S",
    "STARTUP_WAIT_S",
    "STOP_POLL_S",
    "MqttSink",
]

log = logging.getLogger(__name__)

#: Default total time ``close()`` may take: flushing the worker, the ``offline`` acknowledgement and
#: stopping the network thread all share this one deadline.
CLOSE_TIMEOUT_S = 5.0
#: Part of the close budget kept for stopping the network thread (it sends DISCONNECT).
CLOSE_STOP_SHARE = 0.2
#: Media times are sums of frame intervals (15 x 1/30 s may fall a hair short of 0.5 s): the pose rate limit
#: forgives that much.
_CLOCK_SLACK_S = 1e-6


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
        device: The controls, the stale and settle times and the configuration URL (default: no controls).

    Raises:
        ConfigError: Unreadable password file or a password without a user.
    """

    def __init__(self, cfg: MqttConfig, stats: PipelineStats, info: BackendInfo, min_score: float,
                 environ: Mapping[str, str] | None = None, stop: threading.Event | None = None,
                 device: Device | None = None) -> None:  # fmt: skip
        self._cfg = cfg
        self._stop = stop
        self._min_score = min_score
        device = device or Device()
        self._controls = device.controls
        self.settings: BrokerSettings = broker_settings(cfg, os.environ if environ is None else environ)
        self.topics = mt.Topics(cfg.prefix, device_id(cfg))
        self.counters = MqttCounters()
        commands = self._command if self._controls is not None and self._controls.enabled() else None
        self._link = Connection(cfg, self.settings, self.topics, stats, self.counters, self._request_announce,
                                commands)  # fmt: skip
        self._worker = Worker(cfg, self.topics, info, stats, self.counters, self._link, device)
        self._settling = Settling(device.settle_s, device.follow_s)
        self._live: int | None = None  # the generation whose Live marker was queued
        self._held: tuple[bool | None, int | None, dict[str, Any] | None] = (None, None, None)  # the last frame's
        self._present: bool | None = None  # as last queued by publish()
        self._people: int | None = None  # as last seen by publish()
        self._analytics: dict[str, Any] | None = None  # the analytics state, as last seen by publish()
        self._summary = Summary(device.safe_zones, device.settle_s)
        self._held_summary: tuple[bytes, bytes] | None = None  # the last frame's fallen and posture payloads
        self._summarised: dict[str, bytes] = {}  # fallen and posture payloads, as last queued
        rate = cfg.pose_rate()
        self._min_interval = 1.0 / rate if rate > 0 else 0.0
        self._last_pose_at = -math.inf
        #: The run's snapshots, once attached: the Snapshot button's command calls ``snapshots.request()``.
        self.snapshots: SnapshotSink | None = None

    # --- the Sink protocol -------------------------------------------------------------------------

    def start(self) -> None:
        """Configure the client, start connecting in the background and wait briefly for the broker.

        The wait (at most ``STARTUP_WAIT_S``) ends early when the stop event is set.

        Raises:
            ConfigError: TLS files that cannot be loaded.
        """
        self._link.open()
        self._worker.start()
        log.info("MQTT: publishing to %s as %s", self.settings.url, self.topics.base)
        if self.settings.password_in_url:
            log.warning("MQTT: the password is in the url, where ps and config files show it; "
                        "use --mqtt-password-file or systemd LoadCredential=mqtt_password instead")  # fmt: skip
        self._link.wait_for_first_attempt(self._stop)

    def publish(self, result: PoseResult) -> None:
        """Queue a result for the worker; never blocks (drops and counts when the inbox is full)."""
        state = result.state
        present = bool(state["present"]) if state is not None else result.score >= self._min_score
        people = result.people(self._min_score)
        generation = self._worker.liveness.generation
        t = result.ts if result.media_s is None else result.media_s
        self._held = (present, people, state)
        settled = state is None or self._settling.observe(generation, t, result.events)
        self._held_summary = self._summary.observe(result, self._settling.since)
        if settled:
            self._offer_state()
            if generation != self._live and self._worker.put(Live(generation)):
                self._live = generation  # after what it vouches for: the inbox is in order
        put = self._worker.put
        for event in result.events:
            put(Message(self.topics.event, mt.event_payload(event), 1, False))
        if self._cfg.only_person and not present:
            return
        if self._min_interval:  # on the media clock: a file read at full speed sends what real time would
            if t - self._last_pose_at < self._min_interval - _CLOCK_SLACK_S:
                self.counters.rate_limited += 1
                return
            self._last_pose_at = t
        put(dataclasses.replace(result, image=None))

    def attach_snapshots(self, snapshots: SnapshotSink) -> None:
        """Publish every snapshot retained on ``<base>/snapshot``; discovery announces its image and button.

        Call before :meth:`start`. The Snapshot button is a control (:data:`edgepose.control.SNAPSHOT`) whose
        handler the run registers.
        """
        self.snapshots = snapshots
        self._worker.snapshots = True
        snapshots.subscribe(self._send_snapshot)

    def _send_snapshot(self, snapshot: Snapshot) -> None:
        """Queue a snapshot for the worker (the snapshot thread; never blocks)."""
        self._worker.put(Message(self.topics.snapshot, snapshot.jpeg, 1, True))

    def _offer_state(self) -> None:
        """Queue the person state, people count, analytics state, fallen and posture where they changed last.

        Each is remembered only once queued: a change lost to a full inbox is offered again with the next frame.
        """
        present, people, state = self._held
        put = self._worker.put
        if present is not None and present != self._present and put(present):
            self._present = present
        if people is not None and people != self._people and put(People(people)):
            self._people = people
        if (
            state is not None
            and state != self._analytics
            and put(Message(self.topics.state, mt.state_payload(state), 1, True))
        ):
            self._analytics = dict(state)
        if self._held_summary is not None:
            for topic, payload in zip((self.topics.fallen, self.topics.posture), self._held_summary, strict=True):
                if payload != self._summarised.get(topic) and put(Message(topic, payload, 1, True)):
                    self._summarised[topic] = payload

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Send what was accepted, publish ``offline``, disconnect cleanly and stop the threads.

        Args:
            timeout_s: Total time this may take, whatever the broker does: flushing the worker, waiting
                for the broker to acknowledge ``offline`` and stopping the network thread share this one
                deadline (a part is kept for the last step). What is left undone is logged; the broker
                then publishes the Last Will ``offline`` itself.
        """
        if not self._link.opened:
            return
        self._offer_state()  # what the analytics concluded last, even when the run ended before it settled
        deadline = time.monotonic() + max(0.0, timeout_s)
        stop_reserve = CLOSE_STOP_SHARE * max(0.0, timeout_s)
        self._worker.stop(deadline, stop_reserve)
        self._link.close(deadline, stop_reserve)
        self._worker.keep_zones_if_published()  # a short run: its discovery acknowledged before offline was
        c = self.counters
        log.info("MQTT: closed; %d sent, %d dropped offline, %d rate-limited, %d skipped behind a slow link",
                 c.sent, c.dropped, c.rate_limited, c.backlog_skipped)  # fmt: skip

    def depths(self) -> dict[str, int]:
        """Return the queue depths published in stats.

        ``queued``: QoS 1 messages waiting for a connection; ``inbox``: results waiting for the worker;
        ``unsent``: bytes of pose and stats messages waiting to be written to the socket.
        """
        return self._worker.depths()

    def _command(self, name: str, payload: bytes, retained: bool) -> None:
        """Take a command from ``<base>/set/<name>`` (paho's network thread): queue it for the loop, or warn once."""
        topic = self.topics.command(name)
        if retained:
            log.warning("MQTT: ignored a retained command on %s (a command counts once: publish it without retain)",
                        topic)  # fmt: skip
            return
        assert self._controls is not None, "subscribed only with controls"
        try:
            control, value = self._controls.submit(name, payload)
        except CommandError as exc:
            log.warning("MQTT: ignored a command on %s: %s", topic, exc)
            return
        log.info("MQTT: command %s %s", control.name, value)

    def _request_announce(self) -> None:
        """Ask the worker to announce (paho's network thread, after every connection)."""
        self._worker.request_announce()
