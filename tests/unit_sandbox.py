"""Run a command under the seccomp restrictions systemd 252 applies for systemd/edgepose.service.

Usage (Debian's python3 with python3-seccomp): ``/usr/bin/python3 tests/unit_sandbox.py UNIT -- CMD [ARG...]``

Without systemd as PID 1 the unit cannot be started here, so this rebuilds the same kernel-side filters
from the unit file, the way systemd 252's ``seccomp-util.c`` does, and execs the command under them:

- ``SystemCallFilter=`` allow list (groups expanded with ``systemd-analyze syscall-filter``), minus the
  ``~`` deny entries, blocked calls failing with ``SystemCallErrorNumber=``;
- ``MemoryDenyWriteExecute=yes``: ``mmap`` with PROT_WRITE|PROT_EXEC, ``mprotect``/``pkey_mprotect``
  adding PROT_EXEC and ``shmat`` with SHM_EXEC fail with EPERM;
- ``RestrictAddressFamilies=``: ``socket()`` of any other family fails with EAFNOSUPPORT;
- ``SystemCallArchitectures=native`` and ``NoNewPrivileges=yes``.

``--kill`` makes blocked calls kill the process instead (stricter: shows a call that is silently refused).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import seccomp  # python3-seccomp (Debian), only for this helper

PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


def unit_settings(unit: Path) -> dict[str, list[str]]:
    """Return ``{key: [values in order]}`` of the unit's [Service] section."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def syscall_groups() -> dict[str, list[str]]:
    """Parse ``systemd-analyze syscall-filter`` into ``{@group: [members]}``."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True).stdout
    groups: dict[str, list[str]] = {}
    current = ""
    for raw in out.splitlines():
        if raw.startswith("@"):
            current = raw.strip()
            groups[current] = []
        elif raw.startswith("    ") and current and not raw.strip().startswith("#"):
            groups[current].append(raw.strip())
        elif not raw.strip():
            current = ""
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    """Expand ``@group`` names recursively into system call names."""
    result: set[str] = set()
    for name in names:
        if name.startswith("@"):
            result |= expand(groups[name], groups)
        else:
            result.add(name)
    return result


def allowed_syscalls(settings: dict[str, list[str]]) -> set[str]:
    """Apply the ``SystemCallFilter=`` lines in order, as systemd does for an allow list."""
    groups = syscall_groups()
    allowed: set[str] = set()
    for value in settings.get("SystemCallFilter", []):
        if value.startswith("~"):
            allowed -= expand(value[1:].split(), groups)
        else:
            allowed |= expand(value.split(), groups)
    # systemd always allows these so the service can be started at all.
    return allowed | {"execve", "exit", "exit_group", "rt_sigreturn", "sigreturn", "getrlimit"}


def add(filt: seccomp.SyscallFilter, action: int, name: str, *args: seccomp.Arg) -> None:
    """Add a rule, skipping calls this architecture does not have."""
    with contextlib.suppress(RuntimeError, ValueError, OSError):
        filt.add_rule_exactly(action, name, *args)


def main(argv: list[str]) -> int:
    kill = "--kill" in argv
    argv = [a for a in argv if a != "--kill"]
    sep = argv.index("--")
    unit, command = Path(argv[0]), argv[sep + 1 :]
    settings = unit_settings(unit)
    errno_name = (settings.get("SystemCallErrorNumber") or ["EPERM"])[-1]
    blocked = seccomp.KILL_PROCESS if kill else seccomp.ERRNO(getattr(errno, errno_name))

    filters = []
    calls = seccomp.SyscallFilter(defaction=blocked)
    for name in sorted(allowed_syscalls(settings)):
        add(calls, seccomp.ALLOW, name)
    filters.append(calls)

    if (settings.get("MemoryDenyWriteExecute") or ["no"])[-1] in ("yes", "true", "1"):
        mdwe = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        deny = seccomp.KILL_PROCESS if kill else seccomp.ERRNO(errno.EPERM)
        add(mdwe, deny, "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC))
        add(mdwe, deny, "mmap2", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC))
        add(mdwe, deny, "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
        add(mdwe, deny, "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
        add(mdwe, deny, "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
        filters.append(mdwe)

    families = " ".join(settings.get("RestrictAddressFamilies", [])).split()
    if families:
        keep = {int(getattr(socket, name)) for name in families}
        fams = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        deny = seccomp.KILL_PROCESS if kill else seccomp.ERRNO(errno.EAFNOSUPPORT)
        for family in range(64):
            if family not in keep:
                add(fams, deny, "socket", seccomp.Arg(0, seccomp.EQ, family))
        filters.append(fams)

    # Stacked like systemd's separate filters (the strictest verdict wins); the allow list goes last
    # because it forbids seccomp() itself.
    for filt in [*filters[1:], filters[0]]:
        filt.load()
    os.execvp(command[0], command)
    return 127  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
