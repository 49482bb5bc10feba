"""Topic names and message payloads of the MQTT sink (no paho here; discovery is in :mod:`.homeassistant`).

Topics (``<base>`` is ``<prefix>/<device>``; docs/mqtt.md documents every schema):

=========================================  =====================  ====  ======
topic                                      payload                QoS   retain
=========================================  =====================  ====  ======
``<base>/pose``                            pose JSON per frame    0     no
``<base>/status``                          ``online``/``offline`` 1     yes
``<base>/person``                          ``ON``/``OFF``         1     yes
``<base>/people``                          count, e.g. ``2``      1     yes
``<base>/fallen``                          fallen JSON            1     yes
``<base>/posture``                         posture JSON           1     yes
``<base>/stats``                           stats JSON             0     yes
``<base>/snapshot``                        a JPEG                 1     yes
``<base>/analysis``                        ``online``/``offline`` 1     yes
``<base>/camera``                          camera JSON            1     yes
``<base>/<control>``                       a control's state      1     yes
``<base>/set/<control>`` (read)            a command              -     -
``homeassistant/<component>/…/config``     discovery JSON         1     yes
=========================================  =====================  ====  ======
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from edgepose.pose import BackendInfo, PoseResult

ONLINE = "online"
OFFLINE = "offline"
PERSON_ON = "ON"
PERSON_OFF = "OFF"


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
    def people(self) -> str:
        """How many people are in view (poses scoring at least ``min_score``), retained."""
        return f"{self.base}/people"

    @property
    def state(self) -> str:
        """What the analytics conclude (present, fallen, exercise, reps), retained, on every change."""
        return f"{self.base}/state"

    @property
    def fallen(self) -> str:
        """Whether anyone is fallen, and the first fallen person's alarm, id and zone (:mod:`.summary`), retained."""
        return f"{self.base}/fallen"

    @property
    def posture(self) -> str:
        """The most prominent person's posture and id (:mod:`.summary`), retained."""
        return f"{self.base}/posture"

    @property
    def answers(self) -> tuple[str, ...]:
        """The retained topics drawn from the analytics state: sent on change, re-sent while current."""
        return (self.state, self.fallen, self.posture)

    @property
    def event(self) -> str:
        """Each analytics event once (person_entered, person_left, fall, recovered, rep), not retained."""
        return f"{self.base}/event"

    @property
    def stats(self) -> str:
        """Pipeline health, retained."""
        return f"{self.base}/stats"

    @property
    def snapshot(self) -> str:
        """The last snapshot (a fall, a long lie, a request) as the JPEG's bytes, retained."""
        return f"{self.base}/snapshot"

    @property
    def analysis(self) -> str:
        """``online`` while frames are being analysed and the state topics are current, else ``offline``; retained."""
        return f"{self.base}/analysis"

    @property
    def camera(self) -> str:
        """The source's state (``ok``, ``stale``, ``opening``, ``reconnecting``, ``ended``) and why, retained."""
        return f"{self.base}/camera"

    @property
    def commands(self) -> str:
        """The subscription to the device's own command topics."""
        return f"{self.base}/set/+"

    def command(self, name: str) -> str:
        """Where the command ``name`` is sent (read by edgepose)."""
        return f"{self.base}/set/{name}"

    def control(self, name: str) -> str:
        """Return the retained state topic of the control ``name``."""
        return f"{self.base}/{name}"

    def command_name(self, topic: str) -> str | None:
        """Return the control a topic of :attr:`commands` names, or ``None`` for any other topic."""
        head = f"{self.base}/set/"
        name = topic[len(head) :] if topic.startswith(head) else ""
        return name if name and "/" not in name else None


def pose_payload(result: PoseResult) -> bytes:
    """Build the pose message: the same JSON object ``edgepose run`` prints."""
    return json.dumps(result.to_dict(), separators=(",", ":")).encode()


def person_payload(present: bool) -> bytes:
    """``ON`` when a person is present, else ``OFF``."""
    return (PERSON_ON if present else PERSON_OFF).encode()


def people_payload(count: int) -> bytes:
    """Return the number of people in view as decimal text."""
    return str(int(count)).encode()


def state_payload(state: dict[str, Any]) -> bytes:
    """Build the state message: ``{"present", "fallen", "exercise", "reps"}`` as JSON."""
    return json.dumps(state, separators=(",", ":")).encode()


def camera_payload(state: str, reason: str) -> bytes:
    """Build the camera message: ``{"state", "reason"}`` as JSON (no counters: it changes only with the source)."""
    return json.dumps({"state": state, "reason": reason}, separators=(",", ":")).encode()


def event_payload(event: dict[str, Any]) -> bytes:
    """Build one event message: the event object as ``edgepose run`` prints it in ``events``."""
    return json.dumps(event, separators=(",", ":")).encode()


def stats_payload(
    device: str, snapshot: dict[str, Any], info: BackendInfo, mqtt: dict[str, int], cpu_temp_c: float | None
) -> bytes:
    """Build the stats message.

    Args:
        device: Device id.
        snapshot: :meth:`edgepose.health.PipelineStats.snapshot`.
        info: What runs the model.
        mqtt: The sink's own counters and queue depths (``queued``: QoS 1 messages waiting for a
            connection; ``inbox``: results waiting for the sink's worker).
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
