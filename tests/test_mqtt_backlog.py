"""The MQTT sink's backlog rule (edgepose/sinks/mqtt/backlog.py), on a simulated link with an injected clock.

paho's "written yet?" is simulated: a link writes whole messages, oldest first, as its byte allowance allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgepose.sinks.mqtt.backlog import BACKLOG_LIMIT_BYTES, BACKLOG_MIN_AGE_S, Backlog

POSE_BYTES = 2600


@dataclass
class Link:
    """A link writing ``rate`` bytes a second of what was queued, whole messages in order."""

    rate: float
    now: float = 0.0
    allowance: float = 0.0
    queue: list[list[int]] = field(default_factory=list)  # [size, written] per message
    stalled: bool = False

    def clock(self) -> float:
        return self.now

    def send(self, backlog: Backlog, size: int = POSE_BYTES) -> None:
        entry = [size, 0]
        self.queue.append(entry)
        backlog.add(lambda: bool(entry[1]), size)

    def advance(self, dt: float) -> None:
        self.now += dt
        if self.stalled:
            return
        self.allowance += self.rate * dt
        for entry in self.queue:
            if entry[1]:
                continue
            if entry[0] > self.allowance:
                break
            self.allowance -= entry[0]
            entry[1] = 1
        if all(entry[1] for entry in self.queue):
            self.allowance = 0.0  # an idle link saves up nothing


def run(link: Link, backlog: Backlog, seconds: float, fps: float = 15.0) -> tuple[int, int, int]:
    """Offer a pose per frame for ``seconds`` (skipped while behind); return (sent, skipped, most unsent)."""
    sent = skipped = most = 0
    for _ in range(round(seconds * fps)):
        if backlog.behind():
            skipped += 1
        else:
            link.send(backlog)
            sent += 1
        link.advance(1.0 / fps)
        most = max(most, backlog.unsent())
    return sent, skipped, most


def test_a_slow_link_is_held_to_a_few_seconds_of_backlog() -> None:
    link = Link(rate=4096)
    backlog = Backlog(link.clock)
    sent, skipped, most = run(link, backlog, 120)
    assert skipped > sent, "the pose stream is ten times what the link carries"
    assert sent >= 0.8 * 120 * 4096 / POSE_BYTES, "what the link carries is still sent"
    late = run(link, backlog, 60)[2]
    assert late <= BACKLOG_LIMIT_BYTES + 2 * 4096 + POSE_BYTES, "about two seconds of the link, however long it runs"
    assert late < most + POSE_BYTES


def test_a_burst_on_a_fast_link_is_no_backlog() -> None:
    link = Link(rate=10e6)
    backlog = Backlog(link.clock)
    for _ in range(20):  # a file read at full speed: 52 KB handed over before the network thread writes any
        link.send(backlog)
    assert backlog.unsent() > BACKLOG_LIMIT_BYTES
    assert not backlog.behind(), "nothing has waited long yet"
    link.advance(BACKLOG_MIN_AGE_S / 2)
    assert not backlog.behind() and backlog.unsent() == 0


def test_a_hiccup_of_a_fast_link_is_no_backlog_but_an_outage_is() -> None:
    link = Link(rate=10e6)
    backlog = Backlog(link.clock)
    assert run(link, backlog, 10, fps=30)[1] == 0
    link.stalled = True
    _, skipped, _ = run(link, backlog, 0.6, fps=30)  # 18 poses, 47 KB: far over the byte bound
    assert skipped == 0, "a stall of well under a second skips nothing"
    _, skipped, most = run(link, backlog, 5, fps=30)  # the link stays stalled: an outage
    assert skipped > 0 and most < 150_000, "a link that writes nothing is behind, and the backlog stops growing"
    link.stalled = False
    link.advance(0.1)
    assert not backlog.behind(), "written at once when the link comes back"


def test_reset_forgets_the_old_socket() -> None:
    link = Link(rate=0.0)
    backlog = Backlog(link.clock)
    for _ in range(10):
        link.send(backlog)
    link.advance(2 * BACKLOG_MIN_AGE_S)
    assert backlog.behind()
    backlog.reset()
    assert backlog.unsent() == 0 and not backlog.behind()
