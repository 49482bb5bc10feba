"""The Coral EdgeTPUs on this machine, read from sysfs, /dev and /proc: USB Accelerators, PCIe modules, holders.

Pure readers that never load libedgetpu: ``edgepose doctor`` reports what they find, and :mod:`.claim`
looks at them before the EdgeTPU is tried. Every function takes the file system root (``/proc``
separately), so tests can point them at a fake tree for hardware this machine lacks.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

#: Coral USB Accelerator IDs: before its firmware is loaded (Global Unichip) and after (Google).
CORAL_USB_IDS = {("1a6e", "089a"): "not initialised yet (firmware loads on first use)", ("18d1", "9302"): "ready"}
#: The kernel driver an interface is bound to while a process holds it through libusb (``lsusb -t``: Driver=usbfs).
USBFS_DRIVER = "usbfs"


@dataclass(frozen=True)
class UsbCoral:
    """A Coral USB Accelerator on the bus.

    Attributes:
        sysfs: Its /sys/bus/usb/devices entry.
        state: What its USB ID says about it.
        speed_mbps: Link speed (480 = USB 2, 5000 or more = USB 3), 0 when unknown.
        node: Its /dev/bus/usb node, when known.
        claimed: A process holds one of its interfaces (libedgetpu does while it uses the Coral).
    """

    sysfs: Path
    state: str
    speed_mbps: int
    node: Path | None
    claimed: bool = False


@dataclass(frozen=True)
class Holder:
    """A process that has something open.

    Attributes:
        pid: Its process id.
        name: Its systemd service (``edgepose@porch.service``), else its command name.
    """

    pid: int
    name: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.name})" if self.name else f"pid {self.pid}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _claimed(entry: Path) -> bool:
    """Whether an interface of the USB device at ``entry`` (``2-1:1.0`` for ``2-1``) is bound to usbfs."""
    for interface in entry.parent.glob(f"{entry.name}:*"):
        try:
            driver = os.readlink(interface / "driver")
        except OSError:
            continue
        if os.path.basename(driver) == USBFS_DRIVER:
            return True
    return False


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
        found.append(UsbCoral(entry, CORAL_USB_IDS[ids], int(float(speed)) if speed else 0, node, _claimed(entry)))
    return found


def pcie_corals(root: Path = Path("/")) -> list[Path]:
    """Return the ``/dev/apex_N`` nodes of PCIe/M.2 Corals."""
    return sorted((root / "dev").glob("apex_*")) if (root / "dev").is_dir() else []


def holders(targets: Collection[str], proc: Path = Path("/proc")) -> list[Holder]:
    """Return the processes this user may see that have one of ``targets`` open.

    Args:
        targets: What their descriptors point to: a path (``/dev/bus/usb/002/003``) or ``socket:[INODE]``.
        proc: The proc file system.
    """
    wanted = set(targets)
    found = []
    for entry in proc.glob("[0-9]*"):
        if any(link in wanted for link in _links(entry / "fd")):
            found.append(Holder(int(entry.name), _process_name(entry)))
    return sorted(found, key=lambda h: h.pid)


def _links(fds: Path) -> Iterator[str]:
    """Yield what a process's descriptors point to (none when it is gone or another user's)."""
    try:
        entries = list(fds.iterdir())
    except OSError:
        return
    for fd in entries:
        try:
            yield os.readlink(fd)
        except OSError:  # closed meanwhile
            continue


def _process_name(entry: Path) -> str:
    """Return a process's systemd service (from its control group), else its command name."""
    group = _read(entry / "cgroup").splitlines()
    unit = group[-1].rsplit("/", 1)[-1] if group else ""
    return unit if unit.endswith(".service") else _read(entry / "comm")


def socket_inode(abstract_name: str, proc: Path = Path("/proc")) -> str:
    """Return the inode of the bound abstract Unix socket ``abstract_name`` (``/proc/net/unix``), or ``""``."""
    for line in _read(proc / "net" / "unix").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == "@" + abstract_name:
            return fields[6]
    return ""
