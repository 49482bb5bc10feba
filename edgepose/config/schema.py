"""The shape of the configuration: one frozen dataclass per section, and the range of every numeric key."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from edgepose.analytics import AnalyticsConfig, SmoothingConfig


@dataclass(frozen=True)
class ModelConfig:
    """Which model runs where."""

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
    """Where frames come from."""

    source: str = ""
    width: int = 640
    height: int = 480
    fps: float = 30.0
    realtime: bool = False
    max_frames: int = 0
    stale_after_s: float = 5.0
    timeout_s: float = 10.0
    loop: bool = False
    max_fps: float = 0.0


@dataclass(frozen=True)
class OutputConfig:
    """JSON-lines output of ``edgepose run``."""

    path: str = ""


@dataclass(frozen=True)
class MqttConfig:
    """MQTT publishing (see docs/mqtt.md)."""

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


@dataclass(frozen=True)
class PreviewConfig:
    """The HTTP preview for headless boxes."""

    listen: str = ""
    fps: float = 10.0
    mode: str = "video"
    token: str = ""
    token_file: str = ""
    insecure: bool = False
    max_connections: int = 8


@dataclass(frozen=True)
class IdleConfig:
    """Idle mode: the model at a trickle while nobody is there (see ``edgepose/pipeline/idle.py``)."""

    enabled: bool = True
    after_s: float = 10.0
    fps: float = 2.0
    motion_threshold: float = 6.0
    check_fps: float = 10.0


@dataclass(frozen=True)
class DisplayConfig:
    """The on-screen view for an attached monitor."""

    enabled: bool = False
    fullscreen: bool = False


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    idle: IdleConfig = field(default_factory=IdleConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)


SECTIONS: dict[str, type[Any]] = typing.get_type_hints(Config)
SECRET_KEYS = {("preview", "token")}
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
    ("source", "max_fps"): Limit(0.1, 1000, zero=True, note="0: no cap"),
    ("mqtt", "max_rate"): Limit(0.001, 1000, zero=True, note="0: every frame"),
    ("mqtt", "stats_interval_s"): Limit(0.1, 86400),
    ("mqtt", "keepalive_s"): Limit(5, 65535, note="65535 is MQTT's largest keepalive"),
    ("mqtt", "queue_size"): Limit(1, 1_000_000),
    ("mqtt", "reconnect_max_s"): Limit(1, 3600),
    ("preview", "fps"): Limit(0.1, 100),
    ("preview", "max_connections"): Limit(1, MAX_PREVIEW_CONNECTIONS, note="each one being served is a thread"),
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
    ("analytics", "enter_s"): Limit(0, 3600),
    ("analytics", "leave_score"): Limit(0.0, 1.0),
    ("analytics", "leave_s"): Limit(0, 3600),
    ("analytics", "dropout_s"): Limit(0, 60),
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


def section_types(section: str) -> dict[str, Any]:
    """Return the type of every key of ``section``, by key name, in declaration order."""
    hints = typing.get_type_hints(SECTIONS[section])
    return {f.name: hints[f.name] for f in dataclasses.fields(SECTIONS[section])}
