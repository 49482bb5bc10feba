"""The controls' table and mailbox, what each command does, and the state kept across restarts (no broker)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edgepose.analytics import Analytics
from edgepose.config import AnalyticsConfig, PresenceConfig
from edgepose.control import CONTROLS, EXERCISE, CommandError, Controls
from edgepose.events import EventType
from edgepose.health import PipelineStats
from edgepose.pipeline.controls import ControlStore, state_dir, wire_controls
from edgepose.sinks.mqtt.liveness import Live, Liveness, Settling


def test_commands_are_checked_then_applied_in_order_by_the_loop() -> None:
    controls = Controls()
    seen: list[tuple[str, str]] = []
    controls.handle("detection", lambda v: seen.append(("detection", v)))
    controls.handle("exercise", lambda v: seen.append(("exercise", v)))
    assert [c.name for c in controls.enabled()] == ["detection", "exercise"], "only controls with a handler"
    controls.submit("exercise", b" squat\n")
    controls.submit("detection", b"OFF")
    assert seen == [], "nothing runs outside the loop"
    assert controls.apply_pending() == 2 and seen == [("exercise", "squat"), ("detection", "OFF")]
    for name, payload, needle in [("exercise", b"yoga", "not 'yoga'"), ("detection", b"on", "not 'on'"),
                                  ("reset_reps", b"PRESS", "no command"), ("nope", b"1", "no command"),
                                  ("detection", b"\xff", "not UTF-8")]:  # fmt: skip
        with pytest.raises(CommandError, match=needle):
            controls.submit(name, payload)
    assert controls.apply_pending() == 0


def test_a_failing_handler_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    controls = Controls()
    controls.handle("reset_reps", lambda v: 1 / 0)  # type: ignore[func-returns-value]
    controls.submit("reset_reps", b"PRESS")
    with caplog.at_level(logging.WARNING):
        assert controls.apply_pending() == 1
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "ZeroDivisionError" in caplog.text


def test_no_select_option_home_assistant_would_read_as_unknown() -> None:
    assert all(o.lower() != "none" for c in CONTROLS for o in c.options)
    assert EXERCISE.options[0] == "off"


def test_the_commands_act_on_the_analytics_and_the_pause_is_kept(tmp_path: Path) -> None:
    analytics, stats, controls = Analytics(AnalyticsConfig()), PipelineStats(), Controls()
    store = ControlStore(tmp_path / "state", "cam")
    wire_controls(controls, analytics, stats, store)
    assert controls.states() == {"exercise": "off", "detection": "ON"} and not stats.paused
    controls.submit("exercise", b"squat")
    controls.submit("detection", b"OFF")
    controls.apply_pending()
    assert analytics.state()["exercise"] == "squat" and analytics.reps is not None
    assert stats.paused and controls.state("detection") == "OFF"
    analytics.reps.count = 7
    controls.submit("reset_reps", b"PRESS")
    controls.apply_pending()
    assert analytics.state()["reps"] == 0
    # a restart: the pause comes back from the state directory
    again_stats, again = PipelineStats(), Controls()
    wire_controls(again, Analytics(AnalyticsConfig()), again_stats, ControlStore(tmp_path / "state", "cam"))
    assert again_stats.paused and again.state("detection") == "OFF"
    assert ControlStore(tmp_path / "state", "other").detection() == "ON", "one file per device"
    # without commands (no MQTT, or control.commands off): detection on, no handler
    plain_stats, plain = PipelineStats(), Controls()
    wire_controls(plain, Analytics(AnalyticsConfig()), plain_stats, None)
    assert not plain_stats.paused and plain.enabled() == ()


def test_an_unreadable_state_file_is_a_warning_and_detection_on(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    store = ControlStore(tmp_path, "cam")
    store.path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert store.detection() == "ON"
    assert "cannot read" in caplog.text


def test_state_dir_defaults() -> None:
    assert state_dir("/x/y", {"STATE_DIRECTORY": "/var/lib/edgepose"}) == Path("/x/y")
    assert state_dir("", {"STATE_DIRECTORY": "/var/lib/edgepose:/var/lib/other"}) == Path("/var/lib/edgepose")
    assert state_dir("", {"XDG_STATE_HOME": "/home/u/.state"}) == Path("/home/u/.state/edgepose")
    assert state_dir("", {}) == Path.home() / ".local" / "state" / "edgepose"


def test_presence_is_held_until_it_has_decided_after_each_start() -> None:
    settle = PresenceConfig().decided_after_s()
    assert settle == 2.25 == AnalyticsConfig().decided_after_s()
    assert AnalyticsConfig(zone_s=3.0).decided_after_s() == 0.5 + 0.25 + 3.0, "zones that take longer"
    follow = AnalyticsConfig().person_decided_s()
    assert follow == 0.5
    settling = Settling(settle, follow)
    assert not settling.observe(0, 100.0, [])
    assert not settling.observe(0, 101.0, [])
    assert settling.observe(0, 100.0 + settle, []), "after decided_after_s of frames"
    assert settling.since == 100.0
    assert not settling.observe(1, 200.0, []), "a new generation waits again"
    assert settling.since == 200.0
    assert not settling.observe(1, 200.1, [{"type": EventType.PERSON_ENTERED}]), "the posture and zones follow"
    assert not settling.observe(1, 200.5, [])
    assert settling.observe(1, 200.6, []), "or until the presence decided and they had follow_s to follow"


def test_liveness_needs_a_fresh_frame_and_the_loops_word() -> None:
    stats = PipelineStats()
    live = Liveness(stats, stale_after_s=5.0)
    assert not live.online() and live.blocked() == "no frame yet"
    stats.saw_frame()
    stats.source.state = "ok"
    assert not live.online(), "no marker yet"
    live.confirm(Live(live.generation))
    assert live.online()
    stats.paused = True
    assert not live.online() and live.blocked() == "detection is off"
    stats.paused = False
    assert not live.online(), "a pause starts a new generation: the old marker no longer counts"
    live.confirm(Live(live.generation - 1))
    assert not live.online()
    live.confirm(Live(live.generation))
    assert live.online()
    stats.source.state = "reconnecting"
    assert not live.online() and live.camera() == ("reconnecting", "")
