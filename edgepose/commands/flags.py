"""Command-line flags that map onto config keys.

Every flag in :data:`FLAGS` sets one ``[section] key`` of the config, so CLI flags, TOML keys
and ``EDGEPOSE_<SECTION>_<KEY>`` variables are one namespace.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from edgepose.config.schema import ModelConfig
from edgepose.inference.families.movenet.flip import TTA_MODES
from edgepose.manifest import model_choices


@dataclass(frozen=True)
class Flag:
    """A command-line flag bound to a config key.

    Attributes:
        names: Option strings, e.g. ``("--model",)``.
        section: Config section.
        key: Key within the section.
        help: Help text.
        common: Accepted by every subcommand (else only by the ones in ``commands``).
        commands: Subcommands that accept it, when not common.
        kind: Value type for argparse (``None`` for a switch).
        choices: Allowed values.
        metavar: Placeholder in help.
    """

    names: tuple[str, ...]
    section: str
    key: str
    help: str
    common: bool = False
    commands: tuple[str, ...] = ()
    kind: Any = str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The argparse destination, unique per flag."""
        return f"{self.section}__{self.key}"

    def add_to(self, parser: argparse.ArgumentParser | Any) -> None:
        """Add the flag to a parser or argument group (absent unless given)."""
        if self.kind is None:
            parser.add_argument(*self.names, dest=self.dest, action="store_const", const=True, help=self.help,
                                default=argparse.SUPPRESS)  # fmt: skip
        else:
            parser.add_argument(*self.names, dest=self.dest, type=self.kind, choices=self.choices,
                                metavar=self.metavar, help=self.help, default=argparse.SUPPRESS)  # fmt: skip


_RUN = ("run",)
_RUN_BENCH = ("run", "bench")
_RUN_ANALYZE = ("run", "analyze")

FLAGS: tuple[Flag, ...] = (
    Flag(("--model",), "model", "name", model_choices(ModelConfig.name), common=True, metavar="NAME|PATH"),
    Flag(("--max-people",), "model", "max_people", "at most N people per frame with posenet (default 20)",
         common=True, kind=int, metavar="N"),
    Flag(("--runtime",), "model", "runtime", "interpreter package: auto (default), ai_edge_litert, tflite_runtime",
         common=True, metavar="NAME"),
    Flag(("--delegate",), "model", "delegate", "auto (default): edgetpu → xnnpack → cpu", common=True,
         metavar="auto|edgetpu|xnnpack|cpu"),
    Flag(("--threads",), "model", "threads", "CPU threads (default: all cores, at most 4)", common=True,
         kind=int, metavar="N"),
    Flag(("--models-dir",), "model", "models_dir", "where model files live", common=True, metavar="DIR"),
    Flag(("--edgetpu-library",), "model", "edgetpu_library", "EdgeTPU delegate library (default libedgetpu.so.1)",
         common=True, metavar="LIB"),
    Flag(("--tta",), "model", "tta", "MoveNet still images: flip (default) averages each image with its mirror image "
         "(one more invoke); none for a single pass. Video never flips", commands=("run", "infer", "eval"),
         choices=TTA_MODES),
    Flag(("--source",), "source", "source",
         "camera index, /dev/videoN, picamera[:N], rtsp:// or http:// URL, video file, image or folder, "
         "synthetic[:WxH]", commands=_RUN_BENCH, metavar="SRC"),
    Flag(("--width",), "source", "width", "capture width for cameras (default 640)", commands=_RUN, kind=int,
         metavar="PX"),
    Flag(("--height",), "source", "height", "capture height for cameras (default 480)", commands=_RUN, kind=int,
         metavar="PX"),
    Flag(("--fps",), "source", "fps", "capture rate for cameras (default 30)", commands=_RUN, kind=float),
    Flag(("--realtime",), "source", "realtime", "read files at their own frame rate, newest frame wins",
         commands=_RUN, kind=None),
    Flag(("--source-timeout",), "source", "timeout_s", "reopen a camera or stream that delivers no frame for this "
         "many seconds, opening included (default 10)", commands=_RUN, kind=float, metavar="S"),
    Flag(("--max-fps",), "source", "max_fps", "process at most this many frames per second (default: no cap)",
         commands=_RUN, kind=float, metavar="FPS"),
    Flag(("--idle",), "idle", "enabled", "idle mode: with nobody there for a while, run the model twice a second "
         "and wake on motion (default on)", commands=_RUN, choices=("on", "off")),
    Flag(("--loop",), "source", "loop", "start a video file again when it ends", commands=_RUN, kind=None),
    Flag(("--max-frames",), "source", "max_frames", "stop after N processed frames (default: no limit)",
         commands=_RUN, kind=int, metavar="N"),
    Flag(("--output", "-o"), "output", "path", "write JSON lines to FILE, or - for stdout (default when no other "
         "sink is enabled)", commands=_RUN, metavar="-|FILE"),
    Flag(("--mqtt",), "mqtt", "url", "publish to an MQTT broker: mqtt://[user@]host[:port], or mqtts://… "
         "for TLS (password: --mqtt-password-file or $CREDENTIALS_DIRECTORY/mqtt_password)", commands=_RUN,
         metavar="URL"),
    Flag(("--device-id",), "mqtt", "device_id", "device id in MQTT topics (default: the host name)",
         commands=_RUN, metavar="ID"),
    Flag(("--mqtt-prefix",), "mqtt", "prefix", "MQTT topic prefix (default edgepose)", commands=_RUN,
         metavar="PREFIX"),
    Flag(("--mqtt-max-rate",), "mqtt", "max_rate", "at most HZ pose messages per second (default: every "
         "frame)", commands=_RUN, kind=float, metavar="HZ"),
    Flag(("--mqtt-only-person",), "mqtt", "only_person", "publish pose messages only while a person is "
         "present (presence, with its enter and leave delays)", commands=_RUN, kind=None),
    Flag(("--ha-discovery",), "mqtt", "ha_discovery", "publish Home Assistant MQTT discovery configs",
         commands=_RUN, kind=None),
    Flag(("--mqtt-password-file",), "mqtt", "password_file", "file holding the MQTT password (never pass "
         "the password itself)", commands=_RUN, metavar="FILE"),
    Flag(("--mqtt-ca",), "mqtt", "ca_file", "CA certificate(s) to verify an mqtts:// broker (default: "
         "the system's)", commands=_RUN, metavar="FILE"),
    Flag(("--mqtt-cert",), "mqtt", "cert_file", "client certificate for mqtts://", commands=_RUN,
         metavar="FILE"),
    Flag(("--mqtt-key",), "mqtt", "key_file", "client key for mqtts:// (unencrypted)", commands=_RUN,
         metavar="FILE"),
    Flag(("--mqtt-tls-insecure",), "mqtt", "tls_insecure", "do not check the broker's host name against "
         "its certificate (the chain is still verified)", commands=_RUN, kind=None),
    Flag(("--stats-interval",), "mqtt", "stats_interval_s", "seconds between MQTT stats messages "
         "(default 30)", commands=_RUN, kind=float, metavar="S"),
    Flag(("--preview",), "preview", "listen", "serve the live preview page, MJPEG, /pose, /events, /healthz and "
         "/metrics on [HOST:]PORT (host 127.0.0.1 unless given)", commands=_RUN, metavar="[HOST:]PORT"),
    Flag(("--preview-fps",), "preview", "fps", "at most this many preview pictures per second (default 10)",
         commands=_RUN, kind=float, metavar="N"),
    Flag(("--preview-mode",), "preview", "mode", "what the preview shows: video (default), skeleton (on a "
         "blank canvas), blur", commands=_RUN, choices=("video", "skeleton", "blur")),
    Flag(("--preview-token",), "preview", "token", "bearer token the preview requires (prefer "
         "--preview-token-file: arguments are visible to other users)", commands=_RUN, metavar="TOKEN"),
    Flag(("--preview-token-file",), "preview", "token_file", "file holding the preview's bearer token "
         "(default: $CREDENTIALS_DIRECTORY/preview_token if present)", commands=_RUN, metavar="FILE"),
    Flag(("--preview-insecure",), "preview", "insecure", "allow the preview beyond loopback without a token",
         commands=_RUN, kind=None),
    Flag(("--preview-max-connections",), "preview", "max_connections", "serve at most N preview requests at "
         "once, more get 503 (default 8)", commands=_RUN, kind=int, metavar="N"),
    Flag(("--exercise",), "analytics", "exercise", "count repetitions of this exercise (state and rep events)",
         commands=_RUN_ANALYZE, choices=("squat", "pushup", "jumping_jack")),
    Flag(("--smoothing",), "smoothing", "mode", "One-Euro smoothing of the keypoints (default auto: on for video "
         "and cameras, off for still images and for analyze, whose input run has smoothed already)",
         commands=_RUN_ANALYZE, choices=("on", "off", "auto")),
    Flag(("--display",), "display", "enabled", "show the picture with the skeleton on an attached screen "
         "(needs edgepose[display]; Esc or q quits)", commands=_RUN, kind=None),
    Flag(("--fullscreen",), "display", "fullscreen", "use the whole screen for --display", commands=_RUN,
         kind=None),
)  # fmt: skip


def add_command_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the config-bound flags of one subcommand to its parser."""
    group = parser.add_argument_group(f"{command} options")
    for flag in FLAGS:
        if command in flag.commands:
            flag.add_to(group)
