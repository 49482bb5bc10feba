"""``edgepose doctor``'s checks of the devices: cameras, and a Pi's temperature and throttling."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path

from edgepose.config.rendering import redact_url
from edgepose.doctor import hardware
from edgepose.doctor.findings import FAIL, OK, WARN, Check, Context, probe
from edgepose.health import temperatures
from edgepose.pipeline.capture import REOPEN_DELAYS_S
from edgepose.sources import is_stream

HOT_C = 80.0

#: Reads one frame from the ``[source]`` given as JSON on stdin (the URL, and its password, stay out of ``ps``);
#: its last stderr line is ``WxH``, or why no frame came.
_READ_ONE_FRAME = """
import json, sys
from edgepose.config import SourceConfig
from edgepose.sources import open_source
cfg = SourceConfig(**json.loads(sys.stdin.read()))
try:
    source = open_source(cfg.source, cfg)
    source.open()
    try:
        frame = source.read()
    finally:
        source.close()
except Exception as error:
    print(error, file=sys.stderr)
    sys.exit(1)
print("the stream ended" if frame is None else f"{frame.shape[1]}x{frame.shape[0]}", file=sys.stderr)
sys.exit(frame is None)
"""


def check_cameras(ctx: Context) -> list[Check]:
    """Look for V4L2 cameras and picamera2's cameras; FAIL only when the configured camera is missing.

    A missing camera no longer stops ``edgepose run`` (it waits for the camera), but it has nothing to do without
    it: that is still a FAIL, which says what the run does meanwhile.
    """
    if is_stream(ctx.config.source.source):
        return check_stream(ctx)
    cameras = [d for d in hardware.video_devices(ctx.root) if d.capture]
    found = [f"{d.node} ({d.name or 'unnamed'})" for d in cameras]
    checks = []
    for dev in cameras:
        if not dev.accessible:
            checks.append(Check(WARN, "camera", f"no permission on {dev.node}",
                                "add the user to the video group: sudo usermod -aG video $USER (the service "
                                "user has it)"))  # fmt: skip
    picamera = importlib.util.find_spec("picamera2") is not None
    pi_cameras = 0
    if picamera:
        status, reason = probe(ctx.python, "from picamera2 import Picamera2; "
                                "print(len(Picamera2.global_camera_info()), file=__import__('sys').stderr)",
                                timeout=20)  # fmt: skip
        pi_cameras = int(reason) if status == 0 and reason.isdigit() else 0
        found.extend([f"{pi_cameras} Pi camera(s) via picamera2"] if pi_cameras else [])
    source = ctx.config.source.source.strip()
    wants_picamera = source.lower().startswith("picamera")
    wants_v4l2 = source.isdigit() or source.startswith("/dev/video")
    missing_v4l2 = wants_v4l2 and not any(_same_device(source, d.node) for d in cameras)
    if (wants_picamera and not pi_cameras) or missing_v4l2:
        checks.append(Check(FAIL, "camera", f"the configured source {source} is not present "
                            f"(found: {', '.join(found) or 'no camera'}); edgepose run waits for it, trying again "
                            f"every {REOPEN_DELAYS_S[-1]:g} s, and uses it once it appears",
                            _camera_fix(picamera)))  # fmt: skip
    elif found:
        checks.append(Check(OK, "camera", ", ".join(found)))
    else:
        where = "picamera2 sees none" if picamera else "picamera2 is not installed"
        detail = f"no camera found (no V4L2 capture device; {where})"
        checks.append(Check(WARN, "camera", detail, _camera_fix(picamera)))
    return checks


def check_stream(ctx: Context) -> list[Check]:
    """Read one frame from the configured network stream, in a child process bounded by the source timeout."""
    cfg = ctx.config.source
    shown = redact_url(cfg.source.strip())
    status, reason = probe(ctx.python, _READ_ONE_FRAME, timeout=cfg.timeout_s + 5,
                           stdin=json.dumps(dataclasses.asdict(cfg)))  # fmt: skip
    if status == 0 and re.fullmatch(r"[0-9]+x[0-9]+", reason):
        return [Check(OK, "stream", f"{shown} delivers {reason} frames")]
    return [Check(FAIL, "stream", f"no frame from {shown} ({reason or f'exit status {status}'}); edgepose run "
                  f"waits for it, trying again every {REOPEN_DELAYS_S[-1]:g} s, and uses it once it comes",
                  "check the camera's address, port, path and credentials, and that it is on; the camera's own "
                  "web page or VLC shows the same URL")]  # fmt: skip


def _same_device(source: str, node: Path) -> bool:
    return node.name == (f"video{source}" if source.isdigit() else Path(source).name)


def _camera_fix(picamera: bool) -> str:
    pi = (
        "connect the Pi camera ribbon and check: rpicam-hello --list-cameras"
        if picamera
        else ("for a Pi camera install python3-picamera2 (sudo apt install python3-picamera2)")
    )
    return f"connect a USB camera (it appears as /dev/video0, see ls /dev/video*) or, {pi}"


def check_pi_health(ctx: Context) -> list[Check]:
    """Report Raspberry Pi throttling (``vcgencmd get_throttled``) and the hottest thermal zone."""
    checks = []
    bits, error = hardware.throttled()
    if error:
        checks.append(Check(WARN, "throttling", f"vcgencmd get_throttled failed: {error}",
                            "add the user to the video group (for /dev/vchiq)"))  # fmt: skip
    elif bits is not None and bits:
        checks.append(Check(WARN, "throttling", f"{bits:#x}: {', '.join(hardware.throttle_reasons(bits))}",
                            "use the official power supply (5 V 3 A for a Pi 4, 5 V 5 A for a Pi 5) and a "
                            "heatsink or fan"))  # fmt: skip
    elif bits is not None:
        checks.append(Check(OK, "throttling", "none since boot"))
    temps = temperatures(ctx.root)
    if temps:
        zone, hottest = max(temps.items(), key=lambda kv: kv[1])
        if hottest >= HOT_C:
            checks.append(Check(WARN, "temperature", f"{hottest:.1f} °C ({zone}): the Pi slows down from 80 °C",
                                "add a heatsink or fan and give it air"))  # fmt: skip
        else:
            checks.append(Check(OK, "temperature", f"{hottest:.1f} °C ({zone})"))
    return checks


#: The checks, in the order they are reported.
