"""What hardware is attached, read from sysfs and /dev: Coral EdgeTPUs, V4L2 cameras, throttling.

Pure readers that report facts and never judge them (:mod:`edgepose.doctor.checks` does that). Every function
takes the file system root, so tests can point them at a fake tree for hardware this machine lacks.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Coral USB Accelerator IDs: before its firmware is loaded (Global Unichip) and after (Google).
CORAL_USB_IDS = {("1a6e", "089a"): "not initialised yet (firmware loads on first use)", ("18d1", "9302"): "ready"}
#: ``VIDIOC_QUERYCAP``: ``_IOR('V', 0, struct v4l2_capability)`` with its 104-byte struct.
VIDIOC_QUERYCAP = 0x80685600
_CAP_VIDEO_CAPTURE = 0x00000001
_CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
_CAP_M2M = 0x00004000 | 0x00008000
_CAP_DEVICE_CAPS = 0x80000000
#: Names of V4L2 nodes on a Pi that are not cameras (codecs, ISP, HEVC decoder, Pi 5 back end).
_NOT_CAMERAS = re.compile(r"codec|isp|hevc|pispbe|-enc|-dec|rpivid", re.I)
#: ``vcgencmd get_throttled`` bits, now (0-3) and since boot (16-19).
THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage has occurred",
    17: "frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


@dataclass(frozen=True)
class UsbCoral:
    """A Coral USB Accelerator on the bus.

    Attributes:
        sysfs: Its /sys/bus/usb/devices entry.
        state: What its USB ID says about it.
        speed_mbps: Link speed (480 = USB 2, 5000 or more = USB 3), 0 when unknown.
        node: Its /dev/bus/usb node, when known.
    """

    sysfs: Path
    state: str
    speed_mbps: int
    node: Path | None


@dataclass(frozen=True)
class VideoDevice:
    """A V4L2 device node.

    Attributes:
        node: ``/dev/videoN``.
        name: The driver's name for it.
        capture: Whether it captures video (a camera), as far as can be told.
        accessible: Whether this user may open it read-write.
    """

    node: Path
    name: str
    capture: bool
    accessible: bool


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def usb_corals(root: Path = Path("/")) -> list[UsbCoral]:
    """Find Coral USB Accelerators in ``/sys/bus/usb/devices``."""
    found = []
    base = root / "sys" / "bus" / "usb" / "devices"
    for entry in sorted(base.glob("*")) if base.is_dir() else []:
        ids = (_read(entry / "idVendor").lower(), _read(entry / "idProduct").lower())
        if ids not in CORAL_USB_IDS:
            continue
        speed = _read(entry / "speed")
        bus, dev = _read(entry / "busnum"), _read(entry / "devnum")
        node = None
        if bus.isdigit() and dev.isdigit():
            node = root / "dev" / "bus" / "usb" / f"{int(bus):03d}" / f"{int(dev):03d}"
        found.append(UsbCoral(entry, CORAL_USB_IDS[ids], int(float(speed)) if speed else 0, node))
    return found


def pcie_corals(root: Path = Path("/")) -> list[Path]:
    """Return the ``/dev/apex_N`` nodes of PCIe/M.2 Corals."""
    return sorted((root / "dev").glob("apex_*")) if (root / "dev").is_dir() else []


def _querycap(node: Path) -> int | None:
    """Return the V4L2 device capabilities, or ``None`` when the node cannot be asked."""
    try:
        fd = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        buf = fcntl.ioctl(fd, VIDIOC_QUERYCAP, bytes(104))
    except OSError:
        return None
    finally:
        os.close(fd)
    capabilities, device_caps = struct.unpack_from("<II", buf, 84)
    return int(device_caps if capabilities & _CAP_DEVICE_CAPS else capabilities)


def video_devices(root: Path = Path("/")) -> list[VideoDevice]:
    """List ``/dev/videoN`` nodes with their names and whether they are cameras."""
    devices = []
    sysfs = root / "sys" / "class" / "video4linux"
    entries = sorted(sysfs.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 0)
    for entry in entries if sysfs.is_dir() else []:
        node = root / "dev" / entry.name
        if not node.exists():
            continue
        name = _read(entry / "name")
        caps = _querycap(node)
        if caps is not None:
            capture = bool(caps & (_CAP_VIDEO_CAPTURE | _CAP_VIDEO_CAPTURE_MPLANE)) and not caps & _CAP_M2M
        else:
            capture = not _NOT_CAMERAS.search(name)
        devices.append(VideoDevice(node, name, capture, os.access(node, os.R_OK | os.W_OK)))
    return devices


def throttled() -> tuple[int | None, str]:
    """Run ``vcgencmd get_throttled``.

    Returns:
        ``(bits, "")``, ``(None, "")`` when vcgencmd is not installed (not a Pi), or ``(None, error)``.
    """
    tool = shutil.which("vcgencmd")
    if tool is None:
        return None, ""
    try:
        proc = subprocess.run([tool, "get_throttled"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", proc.stdout)
    if proc.returncode != 0 or match is None:
        return None, (proc.stderr or proc.stdout).strip() or f"vcgencmd exited with {proc.returncode}"
    return int(match[1], 16), ""


def throttle_reasons(bits: int) -> list[str]:
    """Describe the set bits of a ``get_throttled`` value."""
    return [text for bit, text in THROTTLE_BITS.items() if bits & (1 << bit)]
