"""What the MQTT worker sends again after every connection and every stats interval (no paho here).

The retained person, people-count, analytics state, fallen and posture (re-sent while they are current, to keep Home
Assistant's ``expire_after`` fresh), the discovery configs, and the stats message; and what the sink knows
about the device beyond the ``[mqtt]`` section (:class:`Device`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from edgepose.config import AnalyticsConfig, MqttConfig, SourceConfig
from edgepose.config.zones import zone_slug
from edgepose.control import EXERCISE, NO_EXERCISE, Controls
from edgepose.health import cpu_temperature
from edgepose.pose import BackendInfo
from edgepose.sinks.mqtt import homeassistant as ha
from edgepose.sinks.mqtt import topics as mt
from edgepose.sinks.mqtt.outbox import Message

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Device:
    """What the sink knows about the device beyond the ``[mqtt]`` section.

    Attributes:
        controls: The commands it takes on ``<base>/set/<name>`` and their states (``None``: none).
        stale_after_s: No frame for this long and the state topics are no longer current (``source.stale_after_s``).
        settle_s: Seconds of frames before presence is published after a (re)start of analysis
            (:meth:`~edgepose.config.AnalyticsConfig.decided_after_s`).
        follow_s: Seconds after a presence change by which posture and zones follow it
            (:meth:`~edgepose.config.AnalyticsConfig.person_decided_s`).
        configuration_url: The device's link in Home Assistant (the preview's address), or ``""``.
        zones: The names of the ``[[zones]]`` (an occupancy and a count entity each).
        removed_zones: Zones the last start announced that are gone: their configs are emptied (removed).
        safe_zones: The ``falls = false`` zones, where lying is no alarm.
        zones_file: Where the zones announced are kept (:func:`keep_zones`) once their discovery was
            published (``None``: not kept).
    """

    controls: Controls | None = None
    stale_after_s: float = SourceConfig.stale_after_s
    settle_s: float = dataclasses.field(default_factory=lambda: AnalyticsConfig().decided_after_s())
    follow_s: float = dataclasses.field(default_factory=lambda: AnalyticsConfig().person_decided_s())
    configuration_url: str = ""
    zones: tuple[str, ...] = ()
    removed_zones: tuple[str, ...] = ()
    safe_zones: tuple[str, ...] = ()
    zones_file: Path | None = None


@dataclasses.dataclass
class Retained:
    """The retained state as last published by the worker (``None``: nothing published yet).

    Attributes:
        person: Whether a person is present.
        people: The people count.
        analytics: The messages drawn from the analytics state (``state``, ``fallen``, ``posture``) by topic.
    """

    person: bool | None = None
    people: int | None = None
    analytics: dict[str, Message] = dataclasses.field(default_factory=dict)

    def people_message(self, topics: mt.Topics) -> Message:
        """Return the people-count message."""
        return Message(topics.people, mt.people_payload(self.people or 0), 1, True)

    def messages(self, topics: mt.Topics) -> list[Message]:
        """Return the person, people-count and analytics state messages, for what was published."""
        msgs = []
        if self.person is not None:
            msgs.append(Message(topics.person, mt.person_payload(self.person), 1, True))
        if self.people is not None:
            msgs.append(self.people_message(topics))
        return msgs + list(self.analytics.values())


def discovery_messages(cfg: MqttConfig, topics: mt.Topics, info: BackendInfo, device: Device,
                       snapshots: bool = False) -> list[Message]:  # fmt: skip
    """Return the Home Assistant discovery configs as retained QoS 1 messages (none unless enabled)."""
    if not cfg.ha_discovery:
        return []
    controls = device.controls
    exercise = (controls.state(EXERCISE.name) if controls is not None else None) or NO_EXERCISE
    settings = ha.Discovery(cfg.stats_interval_s, exercise, controls.enabled() if controls is not None else (),
                            device.configuration_url, snapshots, device.zones, device.removed_zones)  # fmt: skip
    return [Message(topic, payload, 1, True) for topic, payload in ha.discovery_configs(topics, info, settings)]


def stats_message(topics: mt.Topics, snapshot: dict[str, Any], info: BackendInfo,
                  counters: dict[str, int]) -> Message:  # fmt: skip
    """Return the retained stats message, with the sink's counters and the CPU temperature."""
    payload = mt.stats_payload(topics.device, snapshot, info, counters, cpu_temperature())
    return Message(topics.stats, payload, 0, True)


def _announced_zones(path: Path) -> list[str]:
    """Return the zones kept in ``path`` by the last start whose discovery was published (``[]``: none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("MQTT: cannot read the zones announced before from %s (%s)", path, exc)
        return []
    return [n for n in data.get("zones", []) if isinstance(n, str)] if isinstance(data, dict) else []


def removed_zones(path: Path, zones: tuple[str, ...]) -> tuple[str, ...]:
    """Return the zones announced before (kept in ``path``) whose entities are gone now.

    Zones are compared by their slug (the entities' ids): ``Bed`` renamed ``bed`` is the same entities.
    A file that cannot be read is one warning: nothing is removed then. The file changes only through
    :func:`keep_zones`, once the discovery that removes these zones was published: a run that never reached
    the broker removes them next time.
    """
    kept = {zone_slug(name) for name in zones}
    gone: dict[str, str] = {}
    for name in _announced_zones(path):
        if zone_slug(name) not in kept:
            gone.setdefault(zone_slug(name), name)
    return tuple(gone.values())


def keep_zones(path: Path, zones: tuple[str, ...]) -> None:
    """Keep ``zones`` in ``path`` as the zones announced (atomically); a failure is one warning."""
    if _announced_zones(path) == list(zones):
        return
    temporary = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps({"zones": list(zones)}), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("MQTT: cannot keep the announced zones in %s (%s): a zone removed later stays in "
                    "Home Assistant", path, exc)  # fmt: skip
