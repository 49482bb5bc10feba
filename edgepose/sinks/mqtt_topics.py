"""Topic names, message payloads and Home Assistant discovery configs of the MQTT sink (no paho here).

Topics (``<base>`` is ``<prefix>/<device>``; the README, "MQTT", documents every schema):

=========================================  =====================  ====  ======
topic                                      payload                QoS   retain
=========================================  =====================  ====  ======
``<base>/pose``                            pose JSON per frame    0     no
``<base>/status``                          ``online``/``offline`` 1     yes
``<base>/person``                          ``ON``/``OFF``         1     yes
``<base>/stats``                           stats JSON             0     yes
``homeassistant/<component>/…/config``     discovery JSON         1     yes
=========================================  =====================  ====  ======
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose import __version__
from edgepose.pose import BackendInfo, PoseResult

ONLINE = "online"
OFFLINE = "offline"
PERSON_ON = "ON"
PERSON_OFF = "OFF"
HA_PREFIX = "homeassistant"
HA_STATUS_TOPIC = f"{HA_PREFIX}/status"
CPU_TEMP_PATH = Path("/sys/class/thermal/thermal_zone0/temp")


@dataclass(frozen=True)
class Topics:
    """The topics of one device.

    Attributes:
        prefix: Topic prefix (``edgepose``).
        device: Device id (``[a-zA-Z0-9_-]``).
    """

    prefix: str
    device: str

    @property
    def base(self) -> str:
        """``<prefix>/<device>``."""
        return f"{self.prefix}/{self.device}"

    @property
    def pose(self) -> str:
        """One message per processed frame."""
        return f"{self.base}/pose"

    @property
    def status(self) -> str:
        """Availability: ``online``/``offline``, retained; the Last Will."""
        return f"{self.base}/status"

    @property
    def person(self) -> str:
        """Person present: ``ON``/``OFF``, retained."""
        return f"{self.base}/person"

    @property
    def stats(self) -> str:
        """Pipeline health, retained."""
        return f"{self.base}/stats"


def pose_payload(result: PoseResult) -> bytes:
    """Build the pose message: the same JSON object ``edgepose run`` prints."""
    return json.dumps(result.to_dict(), separators=(",", ":")).encode()


def person_payload(present: bool) -> bytes:
    """``ON`` when a person is present, else ``OFF``."""
    return (PERSON_ON if present else PERSON_OFF).encode()


def cpu_temperature(path: Path = CPU_TEMP_PATH) -> float | None:
    """CPU temperature in °C from the kernel's thermal zone, or ``None`` where not readable."""
    try:
        return round(int(path.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def stats_payload(
    device: str, snapshot: dict[str, Any], info: BackendInfo, mqtt: dict[str, int], cpu_temp_c: float | None
) -> bytes:
    """Build the stats message.

    Args:
        device: Device id.
        snapshot: :meth:`edgepose.stats.PipelineStats.snapshot`.
        info: What runs the model.
        mqtt: The sink's own counters.
        cpu_temp_c: CPU temperature, or ``None``.
    """
    data = {
        "ts": round(time.time(), 3),
        "device": device,
        **snapshot,
        "runtime": info.runtime,
        "delegate": info.delegate,
        "threads": info.threads,
        "model": info.model,
        "cpu_temp_c": cpu_temp_c,
        "mqtt": mqtt,
    }
    return json.dumps(data, separators=(",", ":")).encode()


def expire_after(stats_interval_s: float) -> int:
    """Seconds after which Home Assistant marks a sensor unavailable: three missed stats periods."""
    return max(60, math.ceil(3 * stats_interval_s))


def discovery_configs(topics: Topics, info: BackendInfo, stats_interval_s: float) -> list[tuple[str, bytes]]:
    """Home Assistant MQTT discovery: a person binary sensor, a pose score and a frame-rate sensor.

    Returns:
        ``(topic, payload)`` pairs to publish retained at QoS 1.
    """
    node = f"edgepose_{topics.device}"
    common: dict[str, Any] = {
        "availability": [
            {"topic": topics.status, "payload_available": ONLINE, "payload_not_available": OFFLINE},
        ],
        "expire_after": expire_after(stats_interval_s),
        "device": {
            "identifiers": [node],
            "name": f"edgepose {topics.device}",
            "manufacturer": "edgepose",
            "model": f"MoveNet pose ({info.model})",
            "sw_version": __version__,
        },
        "origin": {"name": "edgepose", "sw_version": __version__},
    }
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("binary_sensor", "person", {
            "name": "Person", "state_topic": topics.person, "payload_on": PERSON_ON,
            "payload_off": PERSON_OFF, "device_class": "occupancy"}),
        ("sensor", "score", {
            "name": "Pose score", "state_topic": topics.pose, "value_template": "{{ value_json.score }}",
            "state_class": "measurement", "suggested_display_precision": 2}),
        ("sensor", "fps", {
            "name": "Frame rate", "state_topic": topics.stats, "value_template": "{{ value_json.fps }}",
            "unit_of_measurement": "fps", "state_class": "measurement", "entity_category": "diagnostic"}),
    ]  # fmt: skip
    configs = []
    for component, object_id, specific in entities:
        payload = {**specific, "unique_id": f"{node}_{object_id}", **common}
        topic = f"{HA_PREFIX}/{component}/{node}/{object_id}/config"
        configs.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
    return configs
