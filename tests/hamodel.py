"""How Home Assistant shows an MQTT entity, replayed from its discovery config and the messages in arrival order.

Follows Home Assistant's MQTT rules (homeassistant/components/mqtt: the availability list and
``availability_mode`` of ``schemas.py``/``entity.py``; ``payload_on``/``payload_off`` of ``binary_sensor.py``):
an entity with ``availability`` is unavailable until it has heard ``payload_available``; with ``all`` every
topic must say so, with ``any`` one, with ``latest`` (the default) the last one heard decides. A state
payload that is neither ``payload_on`` nor ``payload_off`` changes nothing. Templates are not rendered:
entities whose state needs one are given ``value`` (what the template computes, written in Python).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

UNAVAILABLE = "unavailable"


class Entity:
    """One entity as Home Assistant shows it.

    Args:
        config: Its discovery config (the JSON object).
        value: What its ``value_template`` renders from a payload; ``None``: the payload itself.
    """

    def __init__(self, config: dict[str, Any], value: Callable[[bytes], str] | None = None) -> None:
        self.config = config
        self._value = value or (lambda payload: payload.decode())
        self._heard: dict[str, bool] = {}
        self._latest: bool | None = None
        self.state = "unknown"

    @property
    def available(self) -> bool:
        """Whether Home Assistant shows it as available now."""
        topics = [a["topic"] for a in self.config.get("availability", [])]
        if not topics:
            return True
        mode = self.config.get("availability_mode", "latest")
        if mode == "all":
            return all(self._heard.get(t, False) for t in topics)
        if mode == "any":
            return any(self._heard.get(t, False) for t in topics)
        return bool(self._latest)

    @property
    def shown(self) -> str:
        """What the frontend shows: ``unavailable``, ``unknown``, ``on``/``off`` or the sensor's value."""
        return self.state if self.available else UNAVAILABLE

    def feed(self, topic: str, payload: bytes) -> None:
        """Take one message (any topic; those it does not follow change nothing)."""
        for entry in self.config.get("availability", []):
            if topic == entry["topic"]:
                text = payload.decode()
                if text == entry.get("payload_available", "online"):
                    self._heard[topic] = self._latest = True
                elif text == entry.get("payload_not_available", "offline"):
                    self._heard[topic] = self._latest = False
        if topic != self.config.get("state_topic"):
            return
        text = self._value(payload)
        if "payload_on" in self.config or self.config.get("device_class") in ("occupancy", "connectivity"):
            if text == self.config.get("payload_on", "ON"):
                self.state = "on"
            elif text == self.config.get("payload_off", "OFF"):
                self.state = "off"
            return
        self.state = text


def shown_sequence(entity: Entity, messages: Iterable[tuple[str, bytes]]) -> list[str]:
    """Return what the entity showed after each message, consecutive repeats merged."""
    shown: list[str] = []
    for topic, payload in messages:
        entity.feed(topic, payload)
        if not shown or shown[-1] != entity.shown:
            shown.append(entity.shown)
    return shown


def config_of(messages: Iterable[tuple[str, bytes]], topic: str) -> dict[str, Any]:
    """Return the last non-empty discovery config published on ``topic``."""
    found = [payload for t, payload in messages if t == topic and payload]
    assert found, f"no discovery config on {topic}"
    return dict(json.loads(found[-1]))
