"""Command-line flags that map onto config keys.

Every flag in :data:`FLAGS` sets one ``[section] key`` of the config, so CLI flags, TOML keys
and ``EDGEPOSE_<SECTION>_<KEY>`` variables are one namespace. A flag's help says what it does; its
default and its choices come from the schema (:mod:`~edgepose.config.schema`,
:mod:`~edgepose.config.choices`), never from the help text.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from edgepose.config.choices import CHOICES
from edgepose.config.schema import SECTIONS, default_meaning, show_value
from edgepose.manifest import model_choices


@dataclass(frozen=True)
class Flag:
    """A command-line flag bound to a config key.

    Attributes:
        names: Option strings, e.g. ``("--model",)``.
        section: Config section.
        key: Key within the section.
        help: What the flag does, without its default (added from the schema).
        common: Accepted by every subcommand (else only by the ones in ``commands``).
        commands: Subcommands that accept it, when not common.
        kind: Value type for argparse (``None`` for a switch).
        choices: The flag's own spelling of a switch's values (``on``/``off``); a key with choices in
            :data:`~edgepose.config.choices.CHOICES` gets those.
        metavar: Placeholder in help.
        argparse_checks: argparse refuses values outside the key's choices; ``False`` leaves that to the
            config's validation (a runtime's aliases) and shows the choices as the placeholder.
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
    argparse_checks: bool = True

    @property
    def dest(self) -> str:
        """The argparse destination, unique per flag."""
        return f"{self.section}__{self.key}"

    def default_text(self) -> str:
        """Return the default as the help shows it: ``default 640``, ``default: no cap``; ``""`` for a switch."""
        if self.kind is None:
            return ""
        meaning = default_meaning(self.section, self.key)
        if meaning:
            return f"default: {meaning}"
        value = getattr(SECTIONS[self.section](), self.key)
        if isinstance(value, bool):
            return f"default {'on' if value else 'off'}"
        return f"default {show_value(value)}" if value != "" else ""

    def full_help(self) -> str:
        """Return the help text with the default appended."""
        default = self.default_text()
        return f"{self.help} ({default})" if default else self.help

    def add_to(self, parser: argparse.ArgumentParser | Any) -> None:
        """Add the flag to a parser or argument group (absent unless given)."""
        if self.kind is None:
            parser.add_argument(*self.names, dest=self.dest, action="store_const", const=True,
                                help=self.full_help(), default=argparse.SUPPRESS)  # fmt: skip
            return
        choices = CHOICES.get((self.section, self.key), self.choices)
        metavar = self.metavar
        if choices is not None and not self.argparse_checks:
            metavar, choices = "|".join(choices), None
        parser.add_argument(*self.names, dest=self.dest, type=self.kind, choices=choices, metavar=metavar,
                            help=self.full_help(), default=argparse.SUPPRESS)  # fmt: skip


_RUN = ("run",)
_RUN_BENCH = ("run", "bench")
_RUN_ANALYZE = ("run", "analyze")

FLAGS: tuple[Flag, ...] = (
    Flag(("--model",), "model", "name", model_choices(), common=True, metavar="NAME|PATH"),
    Flag(("--max-people",), "model", "max_people", "at most N people per frame with posenet", common=True,
         kind=int, metavar="N"),
    Flag(("--runtime",), "model", "runtime", "interpreter package; auto: ai_edge_litert if installed, else "
         "tflite_runtime", common=True, argparse_checks=False),
    Flag(("--delegate",), "model", "delegate", "where the model runs; auto: edgetpu → xnnpack → cpu", common=True,
         argparse_checks=False),
    Flag(("--threads",), "model", "threads", "CPU threads", common=True, kind=int, metavar="N"),
    Flag(("--models-dir",), "model", "models_dir", "where model files live", common=True, metavar="DIR"),
    Flag(("--edgetpu-library",), "model", "edgetpu_library", "EdgeTPU delegate library", common=True,
         metavar="LIB"),
    Flag(("--tta",), "model", "tta", "MoveNet still images: flip averages each image with its mirror image (one "
         "more invoke); none for a single pass. Video never flips", commands=("run", "infer", "eval")),
    Flag(("--source",), "source", "source",
         "camera index, /dev/videoN, picamera[:N], rtsp:// or http:// URL, video file, image or folder, "
         "synthetic[:WxH]", commands=_RUN_BENCH, metavar="SRC"),
    Flag(("--width",), "source", "width", "capture width for cameras", commands=_RUN, kind=int, metavar="PX"),
    Flag(("--height",), "source", "height", "capture height for cameras", commands=_RUN, kind=int, metavar="PX"),
    Flag(("--fps",), "source", "fps", "capture rate for cameras", commands=_RUN, kind=float),
    Flag(("--realtime",), "source", "realtime", "read files at their own frame rate, newest frame wins",
         commands=_RUN, kind=None),
    Flag(("--source-timeout",), "source", "timeout_s", "reopen a camera or stream that delivers no frame for this "
         "many seconds, opening included", commands=_RUN, kind=float, metavar="S"),
    Flag(("--max-fps",), "source", "max_fps", "process at most this many frames per second", commands=_RUN,
         kind=float, metavar="FPS"),
    Flag(("--idle",), "idle", "enabled", "idle mode: with nobody there for a while, run the model at idle.fps and "
         "wake on motion", commands=_RUN, choices=("on", "off")),
    Flag(("--loop",), "source", "loop", "start a video file again when it ends", commands=_RUN, kind=None),
    Flag(("--max-frames",), "source", "max_frames", "stop after N processed frames", commands=_RUN, kind=int,
         metavar="N"),
    Flag(("--output", "-o"), "output", "path", "write JSON lines to FILE, or - for stdout", commands=_RUN,
         metavar="-|FILE"),
    Flag(("--mqtt",), "mqtt", "url", "publish to an MQTT broker: mqtt://[user@]host[:port], or mqtts://… "
         "for TLS (password: --mqtt-password-file or $CREDENTIALS_DIRECTORY/mqtt_password)", commands=_RUN,
         metavar="URL"),
    Flag(("--device-id",), "mqtt", "device_id", "device id in MQTT topics", commands=_RUN, metavar="ID"),
    Flag(("--mqtt-prefix",), "mqtt", "prefix", "MQTT topic prefix", commands=_RUN, metavar="PREFIX"),
    Flag(("--mqtt-max-rate",), "mqtt", "max_rate", "at most HZ pose messages per second", commands=_RUN,
         kind=float, metavar="HZ"),
    Flag(("--mqtt-only-person",), "mqtt", "only_person", "publish pose messages only while a person is "
         "present (presence, with its enter and leave delays)", commands=_RUN, kind=None),
    Flag(("--ha-discovery",), "mqtt", "ha_discovery", "publish Home Assistant MQTT discovery configs",
         commands=_RUN, kind=None),
    Flag(("--mqtt-password-file",), "mqtt", "password_file", "file holding the MQTT password (never pass "
         "the password itself)", commands=_RUN, metavar="FILE"),
    Flag(("--mqtt-ca",), "mqtt", "ca_file", "CA certificate(s) to verify an mqtts:// broker", commands=_RUN,
         metavar="FILE"),
    Flag(("--mqtt-cert",), "mqtt", "cert_file", "client certificate for mqtts://", commands=_RUN,
         metavar="FILE"),
    Flag(("--mqtt-key",), "mqtt", "key_file", "client key for mqtts:// (unencrypted)", commands=_RUN,
         metavar="FILE"),
    Flag(("--mqtt-tls-insecure",), "mqtt", "tls_insecure", "do not check the broker's host name against "
         "its certificate (the chain is still verified)", commands=_RUN, kind=None),
    Flag(("--stats-interval",), "mqtt", "stats_interval_s", "seconds between MQTT stats messages", commands=_RUN,
         kind=float, metavar="S"),
    Flag(("--preview",), "preview", "listen", "serve the live preview page, MJPEG, /pose, /events, /healthz and "
         "/metrics on [HOST:]PORT (host 127.0.0.1 unless given)", commands=_RUN, metavar="[HOST:]PORT"),
    Flag(("--preview-fps",), "preview", "fps", "at most this many preview pictures per second", commands=_RUN,
         kind=float, metavar="N"),
    Flag(("--preview-mode",), "preview", "mode", "what the preview shows: the camera picture, the skeleton on a "
         "blank canvas, or a blurred picture", commands=_RUN),
    Flag(("--preview-token",), "preview", "token", "bearer token the preview requires (prefer "
         "--preview-token-file: arguments are visible to other users)", commands=_RUN, metavar="TOKEN"),
    Flag(("--preview-token-file",), "preview", "token_file", "file holding the preview's bearer token",
         commands=_RUN, metavar="FILE"),
    Flag(("--preview-insecure",), "preview", "insecure", "allow the preview beyond loopback without a token",
         commands=_RUN, kind=None),
    Flag(("--preview-max-connections",), "preview", "max_connections", "serve at most N preview requests at "
         "once, more get 503", commands=_RUN, kind=int, metavar="N"),
    Flag(("--snapshots",), "snapshot", "enabled", "a JPEG of each fall and long lie, and on request: on MQTT, "
         "the preview and in --snapshot-folder", commands=_RUN, choices=("on", "off")),
    Flag(("--snapshot-mode",), "snapshot", "mode", "what a snapshot shows: the skeleton on a blank canvas, on a "
         "heavily blurred picture, or on the picture", commands=_RUN),
    Flag(("--snapshot-folder",), "snapshot", "folder", "also keep each snapshot as a JPEG in DIR (capped by "
         "snapshot.max_files and snapshot.max_mb, the oldest removed first)", commands=_RUN, metavar="DIR"),
    Flag(("--exercise",), "analytics", "exercise", "count repetitions of this exercise (state and rep events)",
         commands=_RUN_ANALYZE),
    Flag(("--smoothing",), "smoothing", "mode", "One-Euro smoothing of the keypoints; auto: on for video and "
         "cameras, off for still images and for analyze, whose input run has smoothed already",
         commands=_RUN_ANALYZE),
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
