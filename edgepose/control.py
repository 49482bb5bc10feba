"""The commands a running edgepose takes from outside: the table of controls, and the mailbox to the loop.

Home Assistant (or anything allowed to publish on ``<base>/set/<name>``) sends a command; the MQTT sink
checks it against :data:`CONTROLS` (:meth:`Controls.submit`, on paho's thread) and the inference loop
applies it between two frames (:meth:`Controls.apply_pending`), so a handler never races the analytics
or the frame it works on. Each stateful control reports its state back (:meth:`Controls.set_state`),
which the sink publishes retained on ``<base>/<name>``.

Adding a command is one entry in :data:`CONTROLS` (its name, kind, label, icon and options) and one
handler registered with :meth:`Controls.handle` where the thing it acts on is built; announcing it to
Home Assistant, the command topic, checking payloads, the warning for a bad one and its state topic
follow from the entry. A control without a handler is neither announced nor accepted.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from edgepose.config.choices import EXERCISES

log = logging.getLogger(__name__)

#: Commands waiting for the loop; beyond this the oldest is dropped (with a warning).
PENDING_MAX = 64


class Kind(str, Enum):
    """The Home Assistant entity a control is announced as (its MQTT discovery component)."""

    SWITCH = "switch"
    SELECT = "select"
    BUTTON = "button"


#: The payloads of a switch (Home Assistant's ``payload_on``/``payload_off`` defaults) and of a button press.
ON, OFF, PRESS = "ON", "OFF", "PRESS"


class CommandError(ValueError):
    """A command that names no control, or whose payload the control does not take."""


@dataclass(frozen=True)
class Control:
    """One command edgepose takes, as Home Assistant shows it.

    Attributes:
        name: The last level of its command topic ``<base>/set/<name>`` and of its state topic ``<base>/<name>``,
            and the discovery object id.
        kind: Switch, select or button.
        label: The entity's name in Home Assistant.
        icon: A Material Design icon (``mdi:…``).
        options: A select's values, in order.
        category: Home Assistant's ``entity_category`` (``config``), or ``""`` for a primary control.
    """

    name: str
    kind: Kind
    label: str
    icon: str
    options: tuple[str, ...] = ()
    category: str = ""

    @property
    def stateful(self) -> bool:
        """Whether it has a state to publish (switches and selects; a button has none)."""
        return self.kind is not Kind.BUTTON

    @property
    def payloads(self) -> tuple[str, ...]:
        """The payloads it takes."""
        if self.kind is Kind.SWITCH:
            return (ON, OFF)
        if self.kind is Kind.SELECT:
            return self.options
        return (PRESS,)

    def parse(self, payload: bytes) -> str:
        """Return the command's value; surrounding white space is ignored.

        Raises:
            CommandError: Not one of :attr:`payloads` (or not UTF-8).
        """
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise CommandError(f"{self.name}: the payload is not UTF-8 text") from None
        if text not in self.payloads:
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise CommandError(f"{self.name} takes {', '.join(self.payloads)}, not {shown!r}")
        return text


#: The exercise select's value for "no exercise". Not ``none``: Home Assistant reads a select state ``none``
#: (any case) as unknown, so an option of that name could never be shown as chosen.
NO_EXERCISE = "off"

DETECTION = Control("detection", Kind.SWITCH, "Detection", "mdi:eye")
EXERCISE = Control("exercise", Kind.SELECT, "Exercise", "mdi:dumbbell", (NO_EXERCISE, *EXERCISES), "config")
RESET_REPS = Control("reset_reps", Kind.BUTTON, "Reset repetitions", "mdi:counter", category="config")
#: Asks the snapshot sink for a picture of the next frame (announced only while snapshots are made).
SNAPSHOT = Control("snapshot", Kind.BUTTON, "Snapshot", "mdi:camera")

#: Every command edgepose knows, in the order Home Assistant lists them.
CONTROLS: tuple[Control, ...] = (DETECTION, EXERCISE, RESET_REPS, SNAPSHOT)


class Controls:
    """The mailbox between the command topics (any thread) and the loop, and each control's state.

    Args:
        table: The controls known (default :data:`CONTROLS`).
    """

    def __init__(self, table: tuple[Control, ...] = CONTROLS) -> None:
        self._table = {control.name: control for control in table}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[str], None]] = {}
        self._pending: collections.deque[tuple[Control, str]] = collections.deque()
        self._states: dict[str, str] = {}
        self._listeners: list[Callable[[], None]] = []

    def handle(self, name: str, handler: Callable[[str], None]) -> None:
        """Register what a command does; called with its value by :meth:`apply_pending`, in the loop."""
        if name not in self._table:
            raise KeyError(f"no control named {name!r}")
        self._handlers[name] = handler

    def enabled(self) -> tuple[Control, ...]:
        """Return the controls that have a handler: the ones announced and accepted."""
        return tuple(control for name, control in self._table.items() if name in self._handlers)

    def submit(self, name: str, payload: bytes) -> tuple[Control, str]:
        """Check a command and queue it for the loop (any thread); return the control and its value.

        Raises:
            CommandError: No enabled control of that name, or a payload it does not take.
        """
        control = self._table.get(name)
        if control is None or name not in self._handlers:
            known = ", ".join(c.name for c in self.enabled())
            raise CommandError(f"no command {name[:40]!r} (known: {known})")
        value = control.parse(payload)
        with self._lock:
            if len(self._pending) >= PENDING_MAX:
                dropped, _ = self._pending.popleft()
                log.warning("commands: %d waiting for the loop; dropped the oldest (%s)", PENDING_MAX, dropped.name)
            self._pending.append((control, value))
        return control, value

    def apply_pending(self) -> int:
        """Run the queued commands' handlers in the order they came (the loop, between frames); return how many."""
        with self._lock:
            batch, self._pending = list(self._pending), collections.deque()
        for control, value in batch:
            try:
                self._handlers[control.name](value)
            except Exception as exc:  # one bad command must not end the run
                log.warning("command %s %s failed: %s: %s", control.name, value, type(exc).__name__, exc)
        return len(batch)

    def set_state(self, name: str, value: str) -> None:
        """Record a control's state (published retained on ``<base>/<name>``) and tell the listeners."""
        with self._lock:
            changed = self._states.get(name) != value
            self._states[name] = value
            listeners = list(self._listeners)
        if changed:
            for listener in listeners:
                listener()

    def state(self, name: str) -> str | None:
        """Return a control's state, or ``None`` before it has one."""
        with self._lock:
            return self._states.get(name)

    def states(self) -> dict[str, str]:
        """Return every stateful control's state, by name."""
        with self._lock:
            return dict(self._states)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (in the thread that set it) whenever a state changes; it must not block."""
        with self._lock:
            self._listeners.append(listener)
