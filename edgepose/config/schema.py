"""The shape of the configuration: one frozen dataclass per section, every default, and the range of every numeric key.

Each section documents its keys in its ``Attributes:``; that text is the keys' description in the
configuration reference (``python -m edgepose.config.reference``). The keys with a fixed set of values
have them in :mod:`edgepose.config.choices`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """The ``[model]`` section: which model runs where.

    Attributes:
        name: The model: lightning, thunder, posenet (several people), blazepose (33 landmarks), or a .tflite path.
        runtime: The TFLite interpreter package (``auto``: ai_edge_litert if installed, else tflite_runtime).
        delegate: Where the model runs: ``auto`` tries the EdgeTPU, then XNNPACK, then plain CPU kernels.
        threads: CPU threads for the XNNPACK and CPU kernels.
        models_dir: Where the model files live.
        edgetpu_library: The EdgeTPU delegate library to load.
        edgetpu_probe: Load the EdgeTPU delegate in a child process first, so a crashing libedgetpu is a fallback.
        edgetpu_worker: Run the EdgeTPU interpreter in a supervised child process (restarted when it crashes).
        min_score: A pose scoring at least this counts as a person (presence, people, drawing).
        max_people: PoseNet: at most this many people per frame.
        tta: Still images with MoveNet: ``flip`` averages each image with its mirror image; video never flips.
    """

    name: str = "lightning"
    runtime: str = "auto"
    delegate: str = "auto"
    threads: int = 0
    models_dir: str = ""
    edgetpu_library: str = "libedgetpu.so.1"
    edgetpu_probe: bool = True
    edgetpu_worker: bool = True
    min_score: float = 0.2
    max_people: int = 20
    tta: str = "flip"


@dataclass(frozen=True)
class SourceConfig:
    """The ``[source]`` section: where frames come from.

    Attributes:
        source: A camera index, /dev/videoN, picamera[:N], an rtsp:// or http:// URL, a video file, an image or
            a folder of images, or synthetic[:WxH].
        width: Capture width asked of a camera.
        height: Capture height asked of a camera.
        fps: Capture rate asked of a camera.
        realtime: Read files at their own frame rate, the newest frame winning, like a camera.
        max_frames: Stop after this many processed frames.
        stale_after_s: ``/healthz`` answers 503 once the last frame is older than this.
        timeout_s: Reopen a camera or stream that delivers no frame for this long, opening included.
        restart_after_s: Under systemd: a camera or stream that gave no frame for this long, retried all along, ends
            the run (exit status 1), so that systemd starts edgepose afresh.
        loop: Start a video file again when it ends.
        max_fps: Process at most this many frames a second.
    """

    source: str = ""
    width: int = 640
    height: int = 480
    fps: float = 30.0
    realtime: bool = False
    max_frames: int = 0
    stale_after_s: float = 5.0
    timeout_s: float = 10.0
    restart_after_s: float = 600.0
    loop: bool = False
    max_fps: float = 0.0


@dataclass(frozen=True)
class OutputConfig:
    """The ``[output]`` section: JSON lines of ``edgepose run``.

    Attributes:
        path: Write JSON lines to this file, or ``-`` for stdout.
    """

    path: str = ""


@dataclass(frozen=True)
class MqttConfig:
    """The ``[mqtt]`` section: publishing to a broker (see docs/mqtt.md).

    Attributes:
        url: The broker, ``mqtt://[user@]host[:port]`` or ``mqtts://…`` for TLS.
        device_id: The device's name in topics and the client id (letters, digits, ``_`` and ``-``).
        prefix: The first topic levels.
        max_rate: At most this many pose messages a second.
        only_person: Publish pose messages only while a person is present (with presence's delays).
        stats_interval_s: Seconds between stats messages (and the retained state sent again).
        ha_discovery: Publish Home Assistant MQTT discovery configs.
        password_file: The file holding the broker password (never the password itself).
        ca_file: CA certificates that verify an mqtts:// broker.
        cert_file: Client certificate for mqtts://.
        key_file: The client certificate's key (unencrypted).
        tls_insecure: Do not check the broker's host name against its certificate (the chain is still verified).
        keepalive_s: The MQTT keepalive.
        queue_size: QoS 1 messages kept while the broker is away (the oldest dropped first).
        reconnect_max_s: Longest wait between reconnect attempts.
    """

    url: str = ""
    device_id: str = ""
    prefix: str = "edgepose"
    max_rate: float = 0.0
    only_person: bool = False
    stats_interval_s: float = 30.0
    ha_discovery: bool = False
    password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False
    keepalive_s: int = 30
    queue_size: int = 1000
    reconnect_max_s: float = 30.0

    def pose_rate(self) -> float:
        """Return the most pose messages a second (0: every frame).

        ``max_rate`` when set; else every frame, or :data:`HA_POSE_RATE` with ``ha_discovery``: a Home
        Assistant box needs no pose stream at the camera's rate (nothing it shows reads it).
        """
        if self.max_rate > 0:
            return self.max_rate
        return HA_POSE_RATE if self.ha_discovery else 0.0


#: Pose messages a second when ``mqtt.max_rate`` is 0 and Home Assistant discovery is on.
HA_POSE_RATE = 1.0


@dataclass(frozen=True)
class ControlConfig:
    """The ``[control]`` section: commands from Home Assistant over MQTT (see docs/mqtt.md).

    Attributes:
        commands: Take commands on ``<base>/set/<name>``: the Detection switch (a privacy pause), the Exercise
            select and the Reset repetitions button (announced with ``mqtt.ha_discovery``).
        state_dir: Where the Detection switch's state is kept, so a pause survives a restart.
    """

    commands: bool = True
    state_dir: str = ""


@dataclass(frozen=True)
class PreviewConfig:
    """The ``[preview]`` section: the HTTP preview for headless boxes.

    Attributes:
        listen: Serve the page, MJPEG, ``/pose``, ``/events``, ``/healthz`` and ``/metrics`` on ``[HOST:]PORT``
            (host 127.0.0.1 unless given).
        fps: At most this many preview pictures a second.
        mode: What the picture shows: the camera picture, the skeleton on a blank canvas, or a blurred picture.
        token: The bearer token the preview requires (prefer ``token_file``: arguments are visible to others).
        token_file: The file holding the bearer token.
        insecure: Allow an address beyond loopback without a token.
        max_connections: Serve at most this many requests at once; more get 503.
    """

    listen: str = ""
    fps: float = 10.0
    mode: str = "video"
    token: str = ""
    token_file: str = ""
    insecure: bool = False
    max_connections: int = 8


@dataclass(frozen=True)
class SnapshotConfig:
    """The ``[snapshot]`` section: a JPEG of each fall and long lie, and one on request (see docs/mqtt.md).

    Attributes:
        enabled: Make snapshots while MQTT, the preview or ``folder`` is on: on MQTT ``<base>/snapshot`` (a Home
            Assistant image, with a Snapshot button), on the preview and in ``folder``.
        mode: What a snapshot shows: the skeleton on a blank canvas (no picture leaves the box), on a heavily
            blurred picture, or on the picture itself.
        folder: Also keep each snapshot as a JPEG file in this folder.
        max_files: Keep at most this many snapshots in ``folder``, the oldest removed first.
        max_mb: Keep at most this many MiB of snapshots in ``folder``, the oldest removed first (the newest stays).
    """

    enabled: bool = True
    mode: str = "skeleton"
    folder: str = ""
    max_files: int = 100
    max_mb: float = 100.0


@dataclass(frozen=True)
class IdleConfig:
    """The ``[idle]`` section: the model at a trickle while nobody is there (``edgepose/pipeline/idle.py``).

    Attributes:
        enabled: Idle mode for cameras, streams and ``realtime`` files.
        after_s: Seconds without a person before going idle.
        fps: Model runs a second while idle, at most (fewer while the picture does not change: see idle mode).
        motion_threshold: Mean grey-level difference on an 80×60 copy that counts as motion.
        check_fps: Frames a second looked at for motion while idle.
    """

    enabled: bool = True
    after_s: float = 10.0
    fps: float = 2.0
    motion_threshold: float = 6.0
    check_fps: float = 10.0


@dataclass(frozen=True)
class DisplayConfig:
    """The ``[display]`` section: the on-screen view for an attached monitor.

    Attributes:
        enabled: Show the picture with the skeleton on an attached screen (needs ``edgepose[display]``).
        fullscreen: Use the whole screen (else a window the frame's size).
    """

    enabled: bool = False
    fullscreen: bool = False


@dataclass(frozen=True)
class SmoothingConfig:
    """The ``[smoothing]`` section: the One-Euro filter on the keypoints (``edgepose/analytics/smoothing.py``).

    Attributes:
        mode: ``auto`` (on for video and cameras, off for still images and ``analyze``), ``on`` or ``off``.
        min_cutoff: Cutoff frequency (Hz) of a keypoint at rest: lower is steadier, but lags slow moves.
        beta: How fast the cutoff rises with speed (per unit of frame-normalised speed): higher follows fast
            moves more closely.
        d_cutoff: Cutoff frequency (Hz) of the speed estimate.
        crop_alpha: Weight of the new crop region in the tracker's low-pass (1 = no smoothing).
        lost_score: A pose scoring below this is "lost": the filter forgets its past.
        max_gap_s: A gap between frames longer than this also resets the filter.
    """

    mode: str = "auto"
    min_cutoff: float = 2.5
    beta: float = 300.0
    d_cutoff: float = 2.5
    crop_alpha: float = 0.9
    lost_score: float = 0.2
    max_gap_s: float = 1.0

    def enabled(self, video: bool) -> bool:
        """Return whether to smooth: ``auto`` means only for a video or camera (``video=True``)."""
        return self.mode == "on" or (self.mode == "auto" and video)


@dataclass(frozen=True)
class PresenceConfig:
    """Thresholds and delays of :class:`~edgepose.analytics.presence.Presence` (from ``[analytics]``).

    Attributes:
        enter_score: Pose score a person must reach to start entering.
        enter_s: Seconds the score must stay at or above ``enter_score`` before ``person_entered``.
        leave_score: Pose score below which a present person starts leaving; above ``enter_score`` it is taken
            as ``enter_score`` (no hysteresis).
        leave_s: Seconds the score must stay below ``leave_score`` before ``person_left``.
        dropout_s: Frames on the other side adding up to less than this do not break a span.
    """

    enter_score: float = 0.3
    enter_s: float = 0.5
    leave_score: float = 0.2
    leave_s: float = 2.0
    dropout_s: float = 0.25

    def decided_after_s(self) -> float:
        """Return the seconds of frames after which the state reflects them, whatever it was before.

        An entry or a departure takes ``enter_s`` or ``leave_s`` of frames, and glitches adding up to less
        than ``dropout_s`` may stretch either: so after this long, a state carried over from before (a
        default at start, the last state before a pause or a lost camera) has been confirmed or changed.
        """
        return max(self.enter_s, self.leave_s) + self.dropout_s


@dataclass(frozen=True)
class BodyConfig:
    """What makes a pose the evidence of a body, in :mod:`edgepose.analytics.body` (from ``[analytics]``).

    Attributes:
        keypoint_score: A keypoint scoring at least this is seen.
        enter_score: Pose score a pose needs to count towards entering.
        leave_score: Pose score below which a pose counts towards leaving (above ``enter_score``: taken as it).
        enter_keypoints: Seen keypoints joined along the skeleton a pose needs to count towards entering
            (with a torso, its size and its proportions).
        leave_keypoints: Below this many seen keypoints joined along the skeleton a pose counts towards leaving.
        min_size: Least size of the body (the longer side of its box) to enter, as a fraction of the frame's
            shorter side.
    """

    keypoint_score: float = 0.3
    enter_score: float = PresenceConfig.enter_score
    leave_score: float = PresenceConfig.leave_score
    enter_keypoints: int = 8
    leave_keypoints: int = 5
    min_size: float = 0.2


@dataclass(frozen=True)
class TrackConfig:
    """Settings of :class:`~edgepose.analytics.tracking.Tracker` (from ``[analytics]``).

    Attributes:
        keypoint_score: Keypoints scoring below this are not compared.
        lost_s: A track whose person has not entered yet is forgotten after this long without a body; the
            motion prediction runs at most this long, and a track unmatched this long is trusted ``1/e``.
    """

    keypoint_score: float = 0.3
    lost_s: float = 1.0


@dataclass(frozen=True)
class PostureConfig:
    """Settings of :class:`~edgepose.analytics.posture.Posture` (from ``[analytics]``).

    Attributes:
        keypoint_score: Keypoints scoring below this are not used.
        upright_below_deg: A torso tilted less than this is upright (standing or sitting).
        lying_deg: A torso tilted at least this is lying.
        hold_s: Seconds a new posture must hold before it is taken.
    """

    keypoint_score: float = 0.3
    upright_below_deg: float = 45.0
    lying_deg: float = 60.0
    hold_s: float = 0.5


@dataclass(frozen=True)
class FallConfig:
    """Parameters of the fall rule of :mod:`edgepose.analytics.falls` (from ``[analytics]``).

    Attributes:
        keypoint_score: Keypoints scoring below this are not used.
        upright_deg: Torso tilt at or below which the person is upright.
        lying_deg: Torso tilt at or above which a fast turn counts as a fall.
        down_deg: Torso tilt the person must stay at or above for ``down_s``.
        window_s: Longest time from upright to ``lying_deg`` for a fall.
        drop: Least fall of both hips and shoulders during the turn, in body heights.
        down_s: Seconds the person must stay down before ``fall``.
        recover_s: Seconds upright after a fall before ``recovered``.
    """

    keypoint_score: float = 0.3
    upright_deg: float = 30.0
    lying_deg: float = 60.0
    down_deg: float = 45.0
    window_s: float = 1.0
    drop: float = 0.25
    down_s: float = 2.0
    recover_s: float = 1.0


@dataclass(frozen=True)
class RepConfig:
    """Settings of :class:`~edgepose.analytics.reps.RepCounter` (from ``[analytics]``).

    Attributes:
        exercise: One of :data:`~edgepose.config.choices.EXERCISES`, or ``""`` for none.
        keypoint_score: Keypoints scoring below this are not used.
        confirm_frames: Consecutive frames a zone must hold before it counts.
        min_rep_s: A repetition faster than this is a glitch and does not count.
    """

    exercise: str = ""
    keypoint_score: float = 0.3
    confirm_frames: int = 2
    min_rep_s: float = 0.3


_B = BodyConfig
_F = FallConfig
_P = PresenceConfig
_R = RepConfig
_T = TrackConfig


@dataclass(frozen=True)
class AnalyticsConfig:
    """The ``[analytics]`` section: presence, falls and repetitions (the docs' analytics page has each rule).

    Attributes:
        exercise: Count repetitions of this exercise.
        keypoint_score: A keypoint scoring at least this is seen (presence, tracking, posture, zones, falls, reps).
        enter_score: Presence: pose score to start entering (with the evidence of a body).
        enter_keypoints: Presence: seen keypoints joined along the skeleton, with a torso, to start entering.
        body_min_size: Presence: least size of a body to start entering (the longer side of its box), as a
            fraction of the frame's shorter side.
        enter_s: Presence: seconds of entering evidence before ``person_entered``.
        leave_score: Presence: pose score below which a person starts leaving (above ``enter_score``: taken as
            ``enter_score``, no hysteresis).
        leave_keypoints: Presence: fewer seen keypoints joined along the skeleton than this start leaving.
        leave_s: Presence: seconds of leaving evidence before ``person_left``.
        dropout_s: Presence: frames back across the threshold adding up to less than this do not break a span.
        track_lost_s: Tracking: a track whose person has not entered yet is forgotten after this long without a
            body (a present person's track lasts until ``person_left``); the motion prediction runs this long.
        posture_s: Posture: seconds a new posture must hold before it is taken.
        zone_s: Zones: seconds a person's point must stay inside (outside) a zone before ``zone_entered``
            (``zone_left``).
        long_lie_s: Long lie: seconds lying outside every ``falls = false`` zone before ``long_lie``.
        fall_upright_deg: Falls: torso tilt counted as upright.
        fall_lying_deg: Falls: torso tilt a fast turn must reach.
        fall_down_deg: Falls: torso tilt the person must stay at or above.
        fall_window_s: Falls: longest time from upright to ``fall_lying_deg``.
        fall_drop: Falls: least drop of hips and shoulders, in body heights.
        fall_down_s: Falls: seconds down before ``fall``.
        fall_recover_s: Falls: seconds upright before ``recovered``.
        rep_confirm_frames: Reps: consecutive frames a zone must hold.
        rep_min_s: Reps: shortest repetition that counts.
    """

    exercise: str = _R.exercise
    keypoint_score: float = _R.keypoint_score
    enter_score: float = _P.enter_score
    enter_keypoints: int = _B.enter_keypoints
    body_min_size: float = _B.min_size
    enter_s: float = _P.enter_s
    leave_score: float = _P.leave_score
    leave_keypoints: int = _B.leave_keypoints
    leave_s: float = _P.leave_s
    dropout_s: float = _P.dropout_s
    track_lost_s: float = _T.lost_s
    posture_s: float = PostureConfig.hold_s
    zone_s: float = 0.5
    long_lie_s: float = 60.0
    fall_upright_deg: float = _F.upright_deg
    fall_lying_deg: float = _F.lying_deg
    fall_down_deg: float = _F.down_deg
    fall_window_s: float = _F.window_s
    fall_drop: float = _F.drop
    fall_down_s: float = _F.down_s
    fall_recover_s: float = _F.recover_s
    rep_confirm_frames: int = _R.confirm_frames
    rep_min_s: float = _R.min_rep_s

    def decided_after_s(self) -> float:
        """Return the seconds of frames after which presence, posture and zones reflect them, whatever came before.

        Presence as :meth:`PresenceConfig.decided_after_s`; a person's posture and zones hold for ``posture_s``
        and ``zone_s`` once they have entered. After a (re)start of analysis the state carried over (a default
        at start) has been confirmed or changed after this long.
        """
        entered = self.enter_s + self.dropout_s + self.person_decided_s()
        return max(self.presence().decided_after_s(), entered)

    def person_decided_s(self) -> float:
        """Return the seconds after a presence change by which the person's posture and zones have followed."""
        return max(self.posture_s, self.zone_s)

    def presence(self) -> PresenceConfig:
        """Return the presence part."""
        return PresenceConfig(self.enter_score, self.enter_s, self.leave_score, self.leave_s, self.dropout_s)

    def body(self) -> BodyConfig:
        """Return the body-evidence part."""
        return BodyConfig(self.keypoint_score, self.enter_score, self.leave_score, self.enter_keypoints,
                          self.leave_keypoints, self.body_min_size)  # fmt: skip

    def tracking(self) -> TrackConfig:
        """Return the tracking part."""
        return TrackConfig(self.keypoint_score, self.track_lost_s)

    def posture(self) -> PostureConfig:
        """Return the posture part: upright below ``fall_down_deg``, lying from ``fall_lying_deg``."""
        return PostureConfig(self.keypoint_score, self.fall_down_deg, self.fall_lying_deg, self.posture_s)

    def falls(self) -> FallConfig:
        """Return the falls part."""
        return FallConfig(self.keypoint_score, self.fall_upright_deg, self.fall_lying_deg, self.fall_down_deg,
                          self.fall_window_s, self.fall_drop, self.fall_down_s, self.fall_recover_s)  # fmt: skip

    def reps(self) -> RepConfig:
        """Return the reps part."""
        return RepConfig(self.exercise, self.keypoint_score, self.rep_confirm_frames, self.rep_min_s)


@dataclass(frozen=True)
class ZoneConfig:
    """One ``[[zones]]`` table: a named area of the picture (the docs' analytics page has the rules).

    Attributes:
        name: The zone's name in ``state`` and events.
        polygon: Its corners ``[x, y]`` in frame coordinates (``[0, 0]`` top left, ``[1, 1]`` bottom right).
        falls: Whether a fall or a long lie inside is an alarm (``false`` for a bed, a sofa, an exercise mat).
    """

    name: str = ""
    polygon: tuple[tuple[float, float], ...] = ()
    falls: bool = True


@dataclass(frozen=True)
class Config:
    """The whole validated configuration (``zones``: the ``[[zones]]`` list; the rest: one table each)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    idle: IdleConfig = field(default_factory=IdleConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)
    zones: tuple[ZoneConfig, ...] = ()


#: Sections written as a list of tables (``[[zones]]``), by name: the type of one entry.
LIST_SECTIONS: dict[str, type[Any]] = {"zones": ZoneConfig}
#: Sections written as one table (``[model]``…), by name: the section's dataclass.
SECTIONS: dict[str, type[Any]] = {
    name: kind for name, kind in typing.get_type_hints(Config).items() if name not in LIST_SECTIONS
}
#: Longest zone name; the characters a zone name may hold.
ZONE_NAME_MAX = 64
ZONE_NAME_CHARS = "letters, digits, _ or -"
#: Most ``[[zones]]``, and most corners of one zone's polygon (a room's area, not a traced outline).
MAX_ZONES, MAX_CORNERS = 64, 256
SECRET_KEYS = {("preview", "token")}
#: What the empty default of a string key means (a numeric key's 0 is explained by its :data:`LIMITS` note).
EMPTY: dict[tuple[str, str], str] = {
    ("model", "models_dir"): "the system install's when run from it, else $STATE_DIRECTORY/models under "
    "systemd, else the checkout's models/, else ~/.local/share/edgepose/models",
    ("output", "path"): "stdout when no other output is on",
    ("mqtt", "url"): "off",
    ("mqtt", "device_id"): "the instance name under edgepose@NAME.service, else the host name",
    ("mqtt", "password_file"): "$CREDENTIALS_DIRECTORY/mqtt_password if present",
    ("mqtt", "ca_file"): "the system's CA certificates",
    ("control", "state_dir"): "$STATE_DIRECTORY under systemd, else $XDG_STATE_HOME/edgepose, else "
    "~/.local/state/edgepose",
    ("preview", "listen"): "off",
    ("preview", "token_file"): "$CREDENTIALS_DIRECTORY/preview_token if present",
    ("snapshot", "folder"): "not kept",
    ("analytics", "exercise"): "none",
}
#: Upper bound of ``preview.max_connections`` (each connection being served is a thread).
MAX_PREVIEW_CONNECTIONS = 256
#: TOML integers are 64-bit: the bounds of an integer key without a narrower range.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Longest string value (PATH_MAX); keeps MQTT topics far below the protocol's 65535 bytes.
MAX_TEXT = 4096


@dataclass(frozen=True)
class Limit:
    """The accepted range of a numeric key. Values are always finite: NaN and ±inf never pass.

    Attributes:
        low: Smallest accepted value.
        high: Largest accepted value.
        zero: 0 is accepted too, below ``low`` (it means "off" or "no limit").
        note: Why the range is what it is, or what 0 means; shown in the error.
    """

    low: float
    high: float
    zero: bool = False
    note: str = ""

    def accepts(self, value: float) -> bool:
        """Whether ``value`` is finite and in range."""
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return self.low <= value <= self.high or (self.zero and value == 0)

    def describe(self) -> str:
        """Describe the range in words, e.g. ``from 5 to 65535 (65535 is MQTT's largest keepalive)``."""
        text = f"from {_number(self.low)} to {_number(self.high)}"
        text = f"0 or {text}" if self.zero else text
        return f"{text} ({self.note})" if self.note else text


#: The range of every numeric key. A key missing here only has to be finite (and 64-bit for integers).
LIMITS: dict[tuple[str, str], Limit] = {
    ("model", "threads"): Limit(0, 64, note="0: all cores, at most 4"),
    ("model", "min_score"): Limit(0.0, 1.0),
    ("model", "max_people"): Limit(1, 100, note="poses per frame, with posenet"),
    ("source", "width"): Limit(1, 16384),
    ("source", "height"): Limit(1, 16384),
    ("source", "fps"): Limit(0.1, 1000),
    ("source", "max_frames"): Limit(0, INT64_MAX, note="0: no limit"),
    ("source", "stale_after_s"): Limit(0.1, 86400),
    ("source", "timeout_s"): Limit(0.5, 3600),
    ("source", "restart_after_s"): Limit(
        120,
        604800,
        zero=True,
        note="0: never; from 120 s on, the restarts stay within the unit's start limit of 5 in 10 minutes",
    ),
    ("source", "max_fps"): Limit(0.1, 1000, zero=True, note="0: no cap"),
    ("mqtt", "max_rate"): Limit(
        0.001, 1000, zero=True, note=f"0: every frame, or {HA_POSE_RATE:g} a second with ha_discovery"
    ),
    ("mqtt", "stats_interval_s"): Limit(0.1, 86400),
    ("mqtt", "keepalive_s"): Limit(5, 65535, note="65535 is MQTT's largest keepalive"),
    ("mqtt", "queue_size"): Limit(1, 1_000_000),
    ("mqtt", "reconnect_max_s"): Limit(1, 3600),
    ("preview", "fps"): Limit(0.1, 100),
    ("preview", "max_connections"): Limit(1, MAX_PREVIEW_CONNECTIONS, note="each one being served is a thread"),
    ("snapshot", "max_files"): Limit(1, 1_000_000),
    ("snapshot", "max_mb"): Limit(0.1, 1_000_000, note="MiB"),
    ("idle", "after_s"): Limit(0.1, 86400),
    ("idle", "fps"): Limit(0.2, 60, note="at least one run every 5 s: health and the systemd watchdog see it"),
    ("idle", "motion_threshold"): Limit(0, 255, note="grey levels"),
    ("idle", "check_fps"): Limit(0.1, 120),
    ("smoothing", "min_cutoff"): Limit(0.001, 1000, note="Hz"),
    ("smoothing", "beta"): Limit(0, 1_000_000),
    ("smoothing", "d_cutoff"): Limit(0.001, 1000, note="Hz"),
    ("smoothing", "crop_alpha"): Limit(0.001, 1.0, note="1: no crop smoothing"),
    ("smoothing", "lost_score"): Limit(0.0, 1.0),
    ("smoothing", "max_gap_s"): Limit(0.001, 3600),
    ("analytics", "keypoint_score"): Limit(0.0, 1.0),
    ("analytics", "enter_score"): Limit(0.0, 1.0),
    ("analytics", "enter_keypoints"): Limit(1, 17, note="of the 17 keypoints"),
    ("analytics", "body_min_size"): Limit(0.0, 1.0, note="of the frame's shorter side"),
    ("analytics", "enter_s"): Limit(0, 3600),
    ("analytics", "leave_score"): Limit(0.0, 1.0),
    ("analytics", "leave_keypoints"): Limit(1, 17, note="of the 17 keypoints; above enter_keypoints: taken as it"),
    ("analytics", "leave_s"): Limit(0, 3600),
    ("analytics", "dropout_s"): Limit(0, 60),
    ("analytics", "track_lost_s"): Limit(0.01, 60),
    ("analytics", "posture_s"): Limit(0, 60),
    ("analytics", "zone_s"): Limit(0, 60),
    ("analytics", "long_lie_s"): Limit(1, 86400),
    ("analytics", "fall_upright_deg"): Limit(0, 40, note="upright: at most this tilt"),
    ("analytics", "fall_lying_deg"): Limit(60, 90, note="lying: at least this tilt"),
    ("analytics", "fall_down_deg"): Limit(41, 60, note="between upright and lying"),
    ("analytics", "fall_window_s"): Limit(0.01, 60),
    ("analytics", "fall_drop"): Limit(0, 10, note="body heights"),
    ("analytics", "fall_down_s"): Limit(0, 3600),
    ("analytics", "fall_recover_s"): Limit(0, 3600),
    ("analytics", "rep_confirm_frames"): Limit(1, 1000),
    ("analytics", "rep_min_s"): Limit(0, 60),
}


def _number(value: float) -> str:
    """``30`` for 30.0, ``0.1`` for 0.1."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def show_value(value: object) -> str:
    """Write a default for people: ``30`` for 30.0, ``0.1``, ``true``, ``lightning``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    return str(value)


def default_meaning(section: str, key: str) -> str:
    """Return what the empty or 0 default of ``section.key`` means (:data:`EMPTY`, a :data:`LIMITS` note), or ``""``."""
    default = getattr(SECTIONS[section](), key)
    if default == "":
        return EMPTY.get((section, key), "")
    note = LIMITS[(section, key)].note if (section, key) in LIMITS else ""
    if default == 0 and not isinstance(default, bool) and note.startswith("0: "):
        return note[len("0: ") :]
    return ""


def section_types(section: str) -> dict[str, Any]:
    """Return the type of every key of ``section``, by key name, in declaration order."""
    hints = typing.get_type_hints(SECTIONS[section])
    return {f.name: hints[f.name] for f in dataclasses.fields(SECTIONS[section])}
