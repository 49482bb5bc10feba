"""The EdgeTPU claim: one process at a time uses the Coral; the others run on the CPU instead of taking it away.

What libedgetpu does when another process is using the USB Coral: before it claims the device it resets
it (``UsbDriver::PrepareUsbDevice`` closes it with a port reset, also when the firmware is loaded already),
which takes the Coral away from the process using it (that one dies with ``transfer in failed … USB
transfer error 5``, google-coral/edgetpu#237); and when it cannot open the device after all, all it says
is ``Failed to load delegate from libedgetpu.so.1``, as for a Coral that is not there. So a busy Coral
must be recognised before libedgetpu is loaded, and :func:`claim_edgetpu` does that, when a Coral is
attached at all (without one there is nothing to share, and libedgetpu finds none either):

- edgepose processes of one installation take turns through an abstract Unix socket that the one using
  the EdgeTPU keeps bound (named after the environment, ``sys.prefix``, so a developer venv and its tests
  never meet the service's); the kernel frees it when that process ends, however it ends;
- a USB Coral with an interface that another process holds (the kernel binds it to ``usbfs``) is busy
  whoever that is: another installation, Frigate, a pycoral script.

Either way it raises :class:`EdgeTpuBusyError` naming the holder, e.g. ``pid 812 (edgepose@porch.service)``.
The backend that opened the EdgeTPU holds the claim until it is closed (so a restarted worker child
cannot lose the Coral to another process meanwhile); a failed attempt releases it at once.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import socket
import sys
import threading
from pathlib import Path
from types import TracebackType

from edgepose.errors import BackendUnavailableError
from edgepose.inference.runtime.corals import holders, pcie_corals, socket_inode, usb_corals

log = logging.getLogger(__name__)

#: What the busy error adds: the rule, and what to do (docs/service.md says more).
ONE_PROCESS = (
    'a Coral serves one process at a time; the others run on the CPU with delegate = "auto" or "xnnpack" '
    "(docs/service.md: several cameras)"
)

_guard = threading.Lock()
_socket: socket.socket | None = None
_users = 0


class EdgeTpuBusyError(BackendUnavailableError):
    """Another process is using the EdgeTPU (``auto`` falls back to the CPU; ``edgetpu`` stops).

    Attributes:
        what: Which device and who has it, e.g. ``the EdgeTPU is in use by pid 812 (edgepose@porch.service)``.
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: {ONE_PROCESS}")
        self.what = what


def lock_name(prefix: str | None = None) -> str:
    """Return the abstract socket name the processes of the environment at ``prefix`` (``sys.prefix``) share."""
    digest = hashlib.sha256((sys.prefix if prefix is None else prefix).encode()).hexdigest()[:16]
    return f"edgepose-edgetpu-{digest}"


class EdgeTpuClaim:
    """A use of the EdgeTPU by this process; :meth:`release` gives it up (the last release frees the socket).

    Args:
        counted: Whether it holds a share of the socket (not when there was no Coral to claim).
    """

    def __init__(self, counted: bool = True) -> None:
        self._released = not counted

    def release(self) -> None:
        """Give the claim up (idempotent)."""
        global _socket, _users
        with _guard:
            if self._released:
                return
            self._released = True
            _users -= 1
            if _users == 0 and _socket is not None:
                _socket.close()
                _socket = None

    def __enter__(self) -> EdgeTpuClaim:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def claim_edgetpu(root: Path = Path("/")) -> EdgeTpuClaim:
    """Claim the EdgeTPU for this process, or say who has it (re-entrant: this process may claim it again).

    Args:
        root: File system root for the USB Coral lookup (tests use a fake tree).

    Raises:
        EdgeTpuBusyError: Another edgepose process of this installation uses it, or another process holds
            the USB Coral.
    """
    global _socket, _users
    with _guard:
        if _users == 0:
            corals = usb_corals(root)
            if not corals and not pcie_corals(root):  # nothing to share, and libedgetpu will find nothing either
                return EdgeTpuClaim(counted=False)
            _socket = _bind(lock_name())
            claimed = [coral for coral in corals if coral.claimed]
            if claimed:
                if _socket is not None:
                    _socket.close()
                    _socket = None
                coral = claimed[0]
                who = holders([str(coral.node)]) if coral.node is not None else []
                by = ", ".join(map(str, who)) or "another process"
                raise EdgeTpuBusyError(f"the USB Coral at {coral.sysfs.name} is in use by {by}")
        _users += 1
    return EdgeTpuClaim()


def _bind(name: str) -> socket.socket | None:
    """Bind the abstract socket ``name``; ``None`` when sockets are not to be had (then only USB is checked).

    Raises:
        EdgeTpuBusyError: Another process has it bound.
    """
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    except OSError as exc:
        log.debug("cannot make the EdgeTPU claim socket: %s", exc)
        return None
    try:
        sock.bind("\0" + name)
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            log.debug("cannot bind the EdgeTPU claim socket: %s", exc)
            return None
        inode = socket_inode(name)
        who = holders([f"socket:[{inode}]"]) if inode else []
        by = ", ".join(map(str, who)) or "another edgepose process"
        raise EdgeTpuBusyError(f"the EdgeTPU is in use by {by}") from None
    return sock
