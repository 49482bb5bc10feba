"""The analytics' event types: the ``type`` of every event on ``<base>/event``, in ``run``'s output and on the page.

A ``str`` enum, so an event's ``type`` compares equal to its name and is written to JSON as that name.
"""

from __future__ import annotations

from enum import Enum


class EventType(str, Enum):
    """What the analytics saw happen (the fields each event carries are in the docs' analytics page)."""

    PERSON_ENTERED = "person_entered"
    PERSON_LEFT = "person_left"
    FALL = "fall"
    RECOVERED = "recovered"
    REP = "rep"
    LONG_LIE = "long_lie"

    def __str__(self) -> str:
        """Return the name as written in events (``fall``), on every Python version."""
        return self.value
