"""The system install this edgepose belongs to: its config file and models folder, and who may read them.

``scripts/install-system.sh`` writes :data:`RECORD` into the environment it builds, naming the install's
config file and models folder (``/etc/edgepose/config.toml`` and ``/var/lib/edgepose/models``; under
``DIR`` for ``--prefix DIR``). Run from that environment (``/usr/local/bin/edgepose``) without
``--config``, the CLI reads that config, and its models folder is the default. Anywhere else (a checkout,
a developer venv, a ``pip install``) there is no record and nothing changes.

One camera per unit: ``edgepose@NAME.service`` (``systemd/edgepose@.service``) reads ``NAME.toml`` next to
the install's ``config.toml`` and tells the process its name in :data:`INSTANCE_ENV`; the instance
configs of an install are :func:`instance_configs`.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The record's place inside the environment (``sys.prefix``); install-system.sh writes it.
RECORD = Path("share", "edgepose", "install.toml")
#: The variable ``edgepose@.service`` sets to its instance name (``%i``): the default ``[mqtt] device_id``.
INSTANCE_ENV = "EDGEPOSE_INSTANCE"


@dataclass(frozen=True)
class SystemInstall:
    """Where a system install keeps its config file and its models."""

    config: Path
    models_dir: Path


class UnreadableConfigError(ConfigError):
    """The system install's config exists but this user cannot read it.

    Attributes:
        problem: What failed, e.g. ``cannot read /etc/edgepose/config.toml (…) as pi``.
        fix: Exactly what to type instead.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}: {fix}")
        self.problem = problem
        self.fix = fix


def system_install(prefix: Path | None = None) -> SystemInstall | None:
    """Return the system install recorded in the environment at ``prefix`` (default ``sys.prefix``), if any."""
    record = (Path(sys.prefix) if prefix is None else prefix) / RECORD
    try:
        with record.open("rb") as fh:
            data = tomllib.load(fh)
        return SystemInstall(config=Path(data["config"]), models_dir=Path(data["models_dir"]))
    except (OSError, ValueError, KeyError, TypeError):  # none, or not one install-system.sh wrote
        return None


def instance_name(environ: Mapping[str, str] | None = None) -> str:
    """Return the name of the ``edgepose@NAME.service`` instance this process is, or ``""`` (not one)."""
    return (os.environ if environ is None else environ).get(INSTANCE_ENV, "").strip()


def instance_configs(install: SystemInstall) -> dict[str, Path]:
    """Return ``{instance name: config file}`` of an install: every ``*.toml`` next to its ``config.toml``.

    ``edgepose@NAME.service`` reads ``NAME.toml`` from that folder (``/etc/edgepose``, or under the prefix of
    a staged install); ``config.toml`` itself is the plain ``edgepose.service``'s.
    """
    folder = install.config.parent
    try:
        found = sorted(folder.glob("*.toml"))
    except OSError:
        return {}
    return {path.stem: path for path in found if path.name != install.config.name}


def config_file(given: Path | None, argv: Sequence[str]) -> Path | None:
    """Return the config file to read: ``--config`` when given, else the system install's when it exists.

    Args:
        given: The ``--config`` argument, if any.
        argv: The command line after ``edgepose``, to say what to type when the file cannot be read.

    Raises:
        UnreadableConfigError: The system install's config exists, but this user may not read it.
    """
    install = None if given is not None else system_install()
    if install is None:
        return given
    try:
        with install.config.open("rb"):
            return install.config
    except FileNotFoundError:
        return None
    except PermissionError:
        raise _unreadable(install.config, argv) from None
    except OSError:  # the config reader says what is wrong with it
        return install.config


def _unreadable(path: Path, argv: Sequence[str]) -> UnreadableConfigError:
    """Build the error for a config this user may not read, with the commands that get past it."""
    user = _user_name(os.getuid())
    try:
        st: os.stat_result | None = path.stat()
    except OSError:
        st = None
    group = _group_name(st.st_gid) if st else ""
    what = f"mode {stat.S_IMODE(st.st_mode):04o}, group {group or st.st_gid}" if st else "its folder is closed"
    ways = []
    if st is not None and st.st_gid != 0 and group:
        ways.append(f"join its group: sudo usermod -a -G {group} {user}, then log in again")
    service = group if st is not None and st.st_gid != 0 and _is_user(group) else ""  # the service user's group
    command = shlex.join(["edgepose", *argv])
    ways.append(f"run it as {service}: sudo -u {service} {command}" if service else f"run it as root: sudo {command}")
    ways.append("give your own: --config FILE")
    return UnreadableConfigError(f"cannot read {path}, the system install's config ({what}), as {user}",
                                 "; or ".join(ways))  # fmt: skip


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def _is_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
