"""What each command does, wired to the loop's parts, and the Detection switch's state kept across restarts.

The handlers run in the inference loop, between frames (:meth:`edgepose.control.Controls.apply_pending`):
the Detection switch sets :attr:`PipelineStats.paused <edgepose.health.PipelineStats.paused>` (the loop
then analyses no frame) and writes the state file, so a pause survives a restart; the Exercise select and
the Reset repetitions button call the analytics' two hooks.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from edgepose.analytics import Analytics
from edgepose.control import DETECTION, EXERCISE, NO_EXERCISE, OFF, ON, RESET_REPS, Controls
from edgepose.health import PipelineStats

log = logging.getLogger(__name__)


def state_dir(configured: str = "", environ: Mapping[str, str] | None = None) -> Path:
    """Return where state kept across restarts lives (``control.state_dir``).

    The configured folder, else ``$STATE_DIRECTORY`` under systemd (its first entry), else
    ``$XDG_STATE_HOME/edgepose``, else ``~/.local/state/edgepose``.
    """
    env = os.environ if environ is None else environ
    if configured:
        return Path(configured).expanduser()
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "edgepose"
    return Path.home() / ".local" / "state" / "edgepose"


class ControlStore:
    """The controls' state that survives a restart: ``<state dir>/control-<device>.json``.

    One file per device id, so two runs on one machine (two cameras) keep their own. Only the Detection
    switch is kept: the exercise starts from ``analytics.exercise`` at each start.

    Args:
        folder: The state directory (made when first written).
        device: The MQTT device id.
    """

    def __init__(self, folder: Path, device: str) -> None:
        self.path = folder / f"control-{device}.json"

    def detection(self) -> str:
        """Return the Detection switch's kept state, ``ON`` when there is none (or it cannot be read: logged)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ON
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s); detection starts on", self.path, exc)
            return ON
        value = data.get(DETECTION.name) if isinstance(data, dict) else None
        if value not in (ON, OFF):
            log.warning("%s holds no detection state (%r); detection starts on", self.path, value)
            return ON
        return str(value)

    def save_detection(self, value: str) -> None:
        """Keep the Detection switch's state (written to a new file, then renamed over the old one)."""
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("w", encoding="utf-8") as out:
                json.dump({DETECTION.name: value}, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot keep the detection state in %s (%s): it will not survive a restart", self.path, exc)


def wire_controls(controls: Controls, analytics: Analytics, stats: PipelineStats, store: ControlStore | None) -> None:
    """Report the controls' states and, with a store (commands on), register what each command does.

    Args:
        controls: The mailbox the MQTT sink feeds.
        analytics: The analytics stage the Exercise select and Reset repetitions act on.
        stats: Pipeline health: ``paused`` follows the Detection switch.
        store: Where the Detection switch's state is kept; ``None`` takes no commands (detection stays on).
    """
    controls.set_state(EXERCISE.name, analytics.config.exercise or NO_EXERCISE)
    detection = store.detection() if store is not None else ON
    stats.paused = detection == OFF
    controls.set_state(DETECTION.name, detection)
    if stats.paused:
        log.warning("detection is off (kept in %s): no frame is analysed until it is turned on", store and store.path)
    if store is None:
        return

    def set_detection(value: str) -> None:
        if value != controls.state(DETECTION.name):
            log.info("detection %s: %s", value.lower(), "frames are analysed again" if value == ON
                     else "no frame is analysed or published until it is turned on")  # fmt: skip
        stats.paused = value == OFF
        store.save_detection(value)
        controls.set_state(DETECTION.name, value)

    def set_exercise(value: str) -> None:
        analytics.set_exercise("" if value == NO_EXERCISE else value)
        log.info("exercise %s: repetitions count from 0", value)
        controls.set_state(EXERCISE.name, value)

    def reset_reps(_value: str) -> None:
        analytics.reset_reps()
        log.info("repetitions reset to 0")

    controls.handle(DETECTION.name, set_detection)
    controls.handle(EXERCISE.name, set_exercise)
    controls.handle(RESET_REPS.name, reset_reps)
