"""The MQTT sink's worker thread: results from the inbox become messages for the connection.

``MqttSink.publish`` only puts items into the bounded inbox; this thread turns them into messages (pose,
person, people count, analytics state and events), announces after every connection (discovery, the
queued messages, the retained state, stats), sends the retained state (while it is current) and stats
every ``mqtt.stats_interval_s``, and follows what changes without a frame: ``<base>/analysis``
(:mod:`.liveness`), the camera's state and the controls' states.

While detection is off, it sends no pose, stats or camera message: only ``<base>/analysis`` (``offline``)
and the controls' own states, besides the status the connection keeps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from edgepose.config import MqttConfig
from edgepose.control import EXERCISE, NO_EXERCISE
from edgepose.health import PipelineStats
from edgepose.pose import BackendInfo, PoseResult
from edgepose.sinks.mqtt import topics as mt
from edgepose.sinks.mqtt.announce import Device, Retained, discovery_messages, keep_zones, stats_message
from edgepose.sinks.mqtt.connection import Connection, time_left
from edgepose.sinks.mqtt.liveness import Live, Liveness
from edgepose.sinks.mqtt.outbox import Message, MqttCounters

#: Every line of the sink is logged under one name, whichever of its modules writes it (journald shows it).
log = logging.getLogger(__name__)

#: Results waiting for the worker; beyond this ``publish`` drops (the worker is stuck).
INBOX_SIZE = 1024
#: Longest the worker sleeps before it looks for an announce request.
POLL_S = 0.5

_END = object()
_WAKE = object()


@dataclasses.dataclass(frozen=True)
class People:
    """A change of the people count, on its way to the worker."""

    count: int


class Worker:
    """The thread between ``MqttSink.publish`` and the connection; an unexpected error in a step is logged.

    Inbox items: a ``PoseResult`` (a pose message), a ``bool`` (the person state), ``People`` (the people
    count), a ready ``Message`` (analytics state and events) or :class:`~.liveness.Live` (the state sent so
    far is current).

    Args:
        cfg: The validated ``[mqtt]`` section.
        topics: The sink's topics.
        info: What runs the model at start (in stats and discovery while ``stats`` has no backend).
        stats: Pipeline health, read for stats messages; its backend's current info is what stats and
            discovery report, and discovery is sent again when it changes (a fallback to the CPU).
        counters: The sink's counters: inbox overflow is counted here; all are published in stats.
        link: The connection messages are sent through.
        device: The controls, the stale time and the configuration URL.
    """

    def __init__(self, cfg: MqttConfig, topics: mt.Topics, info: BackendInfo, stats: PipelineStats,
                 counters: MqttCounters, link: Connection, device: Device) -> None:  # fmt: skip
        self._cfg = cfg
        self._device = device
        self.liveness = Liveness(stats, device.stale_after_s)
        self._analysis: bool | None = None  # as last published (None: to be published)
        self._logged: bool | None = None  # as last logged
        self._camera: bytes | None = None
        self._controls: dict[str, str] = {}
        self._exercise = NO_EXERCISE  # the exercise the last discovery announced
        self._topics = topics
        self._info = info
        self._stats = stats
        self._counters = counters
        self._link = link
        self._inbox: queue.Queue[object] = queue.Queue(maxsize=INBOX_SIZE)
        self._announce = threading.Event()
        self._retained = Retained()  # as last published by the worker
        self._announced = info  # the backend the last discovery named
        self._zones_published: list[Callable[[], bool]] | None = None  # the discovery's checks, until kept
        self._zones_kept = device.zones_file is None
        self._thread = threading.Thread(target=self._work, name="edgepose-mqtt", daemon=True)
        #: Snapshots are published: discovery announces their image and button.
        self.snapshots = False
        if device.controls is not None:
            device.controls.subscribe(self.wake)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, deadline: float, reserve: float) -> None:
        """Send what was accepted and stop the thread, giving up ``reserve`` seconds before ``deadline``."""
        if self._thread.is_alive():
            try:
                self._inbox.put(_END, timeout=time_left(deadline, reserve))
            except queue.Full:
                log.warning("MQTT: worker stuck; closing without flushing")
            self._thread.join(time_left(deadline, reserve))

    def put(self, item: object) -> bool:
        """Queue ``item`` for the worker; return whether it was queued (else it is counted as overflow)."""
        try:
            self._inbox.put_nowait(item)
        except queue.Full:
            self._counters.overflow += 1
            return False
        return True

    def request_announce(self) -> None:
        """Ask for discovery, the queued messages, the state and stats to be sent (any thread)."""
        self._announce.set()
        self.wake()

    def wake(self) -> None:
        """Make the worker look at what changes without a frame now (any thread; a control's new state)."""
        with contextlib.suppress(queue.Full):  # a full inbox wakes the worker anyway
            self._inbox.put_nowait(_WAKE)

    def depths(self) -> dict[str, int]:
        """Return the queue depths published in stats.

        ``queued``: QoS 1 messages waiting for a connection; ``inbox``: results waiting for the worker;
        ``unsent``: bytes of pose and stats messages waiting to be written to the socket.
        """
        return {"queued": self._link.queued, "inbox": self._inbox.qsize(), "unsent": self._link.unsent_bytes}

    def _work(self) -> None:
        interval = self._cfg.stats_interval_s
        next_stats = time.monotonic() + interval
        while True:
            if self._announce.is_set():
                self._announce.clear()
                self._guard(self._send_announce)
            self._guard(self._follow)
            now = time.monotonic()
            if now >= next_stats:
                next_stats = now + interval
                self._guard(self._send_state, True)
            try:
                item = self._inbox.get(timeout=min(POLL_S, max(0.0, next_stats - now)))
            except queue.Empty:
                continue
            if item is _END:
                break
            if isinstance(item, PoseResult):
                self._guard(self._send, Message(self._topics.pose, mt.pose_payload(item), 0, False))
            elif isinstance(item, bool):
                self._retained.person = item
                self._guard(self._send, Message(self._topics.person, mt.person_payload(item), 1, True))
            elif isinstance(item, People):
                self._retained.people = item.count
                if self._link.connected:
                    self._guard(self._send, self._retained.people_message(self._topics))
            elif isinstance(item, Message):
                if item.topic in self._topics.answers:
                    self._retained.analytics[item.topic] = item
                self._guard(self._send, item)
            elif isinstance(item, Live):
                self.liveness.confirm(item)
        self._guard(self._send_state, False)
        if self._analysis:
            self._guard(self._send, Message(self._topics.analysis, mt.OFFLINE.encode(), 1, True))

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        """Run one worker step; an unexpected error is logged, never fatal."""
        try:
            fn(*args)
        except Exception as exc:
            log.warning("MQTT: %s failed: %s: %s", getattr(fn, "__name__", "step"), type(exc).__name__, exc)

    def _send(self, msg: Message) -> None:
        self._link.send(msg)

    def _send_announce(self) -> None:
        """After every (re)connect: discovery, the queued messages, the person state and stats.

        The connection has just published ``<base>/analysis`` ``offline`` (then ``online`` status): what
        follows changes nothing Home Assistant shows until :meth:`_follow` publishes ``analysis`` again.
        """
        self._announced = info = self._stats.backend_info(self._info)
        self._exercise = self._current_exercise()
        checks = [self._link.send(msg) for msg in discovery_messages(self._cfg, self._topics, info, self._device,
                                                                    self.snapshots)]  # fmt: skip
        if not self._zones_kept:
            published = [check for check in checks if check is not None]
            self._zones_published = published if len(published) == len(checks) else None
        self._link.flush()
        self._send_state(False)
        self._analysis, self._camera, self._controls = None, None, {}  # published again by _follow

    def keep_zones_if_published(self) -> None:
        """Keep the zones announced once the broker has every message of the discovery that announced them.

        Called by the worker while connected, and once more by the sink after its close waited for the
        broker's acknowledgement of ``offline`` (QoS 1 is acknowledged in order: a short run's discovery is
        acknowledged by then).
        """
        if self._zones_published is not None and all(check() for check in self._zones_published):
            self._zones_published, self._zones_kept = None, True
            assert self._device.zones_file is not None
            keep_zones(self._device.zones_file, self._device.zones)

    def _current_exercise(self) -> str:
        controls = self._device.controls
        return (controls.state(EXERCISE.name) if controls is not None else None) or NO_EXERCISE

    def _follow(self) -> None:
        """Publish what changed without a frame: the controls' states, the camera's, ``<base>/analysis``.

        Keeps the zones announced once the broker has every message of the discovery that announced them
        (and emptied the configs of the zones gone).
        """
        if not self._link.connected:
            return
        self.keep_zones_if_published()
        controls = self._device.controls
        for name, value in (controls.states() if controls is not None else {}).items():
            if self._controls.get(name) != value:
                self._controls[name] = value
                self._send(Message(self._topics.control(name), value.encode(), 1, True))
        exercise = self._current_exercise()
        if self._cfg.ha_discovery and (exercise == NO_EXERCISE) != (self._exercise == NO_EXERCISE):
            self.request_announce()  # Repetitions comes or goes with the exercise
        if not self._stats.paused:
            camera = mt.camera_payload(*self.liveness.camera())
            if camera != self._camera:
                self._camera = camera
                self._send(Message(self._topics.camera, camera, 1, True))
        online = self.liveness.online()
        if online != self._analysis:
            if online != self._logged:
                self._logged = online
                reason = "" if online else f" ({self.liveness.blocked() or 'presence not decided yet'})"
                log.info("MQTT: the state topics are %s%s", "current" if online else "not current", reason)
            self._analysis = online
            self._send(Message(self._topics.analysis, (mt.ONLINE if online else mt.OFFLINE).encode(), 1, True))

    def _send_state(self, periodic: bool) -> None:
        """Send person, people count and analytics state (while current, when ``periodic``) and stats.

        The periodic re-send keeps Home Assistant's ``expire_after`` fresh only while frames are being
        analysed; after a connection, the last state is sent whatever it is (``analysis`` says whether it
        is current). No stats while detection is off.
        """
        if not periodic or self._analysis:
            for msg in self._retained.messages(self._topics):
                if self._link.connected:
                    self._send(msg)
        if self._stats.paused:
            return
        counters = {**dataclasses.asdict(self._counters), **self.depths()}
        info = self._stats.backend_info(self._info)
        self._send(stats_message(self._topics, self._stats.snapshot(), info, counters))
        if info != self._announced:  # the backend changed since discovery named it: announce again
            self.request_announce()
