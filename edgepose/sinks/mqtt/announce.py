"""What the MQTT worker sends again after every connection and every stats interval (no paho here).

The retained person, people-count and analytics state (re-sent to keep Home Assistant's ``expire_after``
fresh), the discovery configs, and the stats message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgepose.config import MqttConfig
from edgepose.health import cpu_temperature
from edgepose.pose import BackendInfo
from edgepose.sinks.mqtt import homeassistant as ha
from edgepose.sinks.mqtt import topics as mt
from edgepose.sinks.mqtt.outbox import Message


@dataclasses.dataclass
class Retained:
    """The retained state as last published by the worker (``None``: nothing published yet).

    Attributes:
        person: Whether a person is present.
        people: The people count.
        analytics: The analytics state message.
    """

    person: bool | None = None
    people: int | None = None
    analytics: Message | None = None

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
        if self.analytics is not None:
            msgs.append(self.analytics)
        return msgs


def discovery_messages(cfg: MqttConfig, topics: mt.Topics, info: BackendInfo, snapshots: bool = False) -> list[Message]:
    """Return the Home Assistant discovery configs as retained QoS 1 messages (none unless enabled)."""
    if not cfg.ha_discovery:
        return []
    configs = ha.discovery_configs(topics, info, cfg.stats_interval_s, cfg.only_person, cfg.max_rate, snapshots)
    return [Message(topic, payload, 1, True) for topic, payload in configs]


def stats_message(topics: mt.Topics, snapshot: dict[str, Any], info: BackendInfo,
                  counters: dict[str, int]) -> Message:  # fmt: skip
    """Return the retained stats message, with the sink's counters and the CPU temperature."""
    payload = mt.stats_payload(topics.device, snapshot, info, counters, cpu_temperature())
    return Message(topics.stats, payload, 0, True)
