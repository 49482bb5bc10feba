"""Where the preview listens and who may watch: ``[HOST:]PORT``, the token, and the rule joining them.

An address beyond loopback needs a bearer token (or ``insecure``). Checked with the rest of the
configuration (:func:`edgepose.config.validate`), so a bad address or a missing token stops
``edgepose run`` before the model loads, and ``edgepose doctor`` reports it; the preview sink applies
the same :func:`check_access` when it starts. Binding the address stays the sink's job.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edgepose.config.schema import PreviewConfig
from edgepose.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
#: Names that always mean this machine (a trailing dot is the same name, fully qualified).
LOOPBACK_NAMES = ("localhost", "localhost.")
#: Name of the systemd credential holding the token (``LoadCredential=preview_token:…``).
CREDENTIAL_NAME = "preview_token"

#: A host name: dot-separated labels of letters, digits and inner hyphens (RFC 1123), an optional final dot.
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, IPv6 without brackets) only reaches this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """The checked address and token of a preview.

    Attributes:
        host: Where to listen (an IP address or a host name; IPv6 without brackets).
        port: The TCP port (0: any free one).
        token: The bearer token every endpoint but ``/healthz`` requires, or ``""`` for none.
    """

    host: str
    port: int
    token: str

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the address."""
        return is_loopback(self.host)


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``[HOST:]PORT`` into host and port; ``HOST`` may be ``[v6]``, empty means all interfaces.

    Raises:
        ConfigError: Not a valid address.
    """
    value = text.strip()
    host, sep, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if not sep:
        host, port = DEFAULT_HOST, value
    elif bracketed:
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"--preview: write an IPv6 address in brackets, like [::1]:8080, not {text!r}")
    elif not host:
        host = "0.0.0.0"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--preview (preview.listen) must be [HOST:]PORT with a port from 0 to 65535, not {text!r}")
    if not _valid_host(host, bracketed):
        raise ConfigError(
            f"--preview (preview.listen) must be [HOST:]PORT with HOST an IP address, [IPv6] or a host name, "
            f"not {text!r}"
        )
    return host, int(port)


def _valid_host(host: str, bracketed: bool) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        last = host.rstrip(".").rpartition(".")[2]  # all digits: a mistyped IPv4 address, not a name
        return not bracketed and len(host) <= 253 and _HOST_NAME.fullmatch(host) is not None and not last.isdigit()
    return address.version == 6 or not bracketed


def resolve_token(cfg: PreviewConfig, environ: Mapping[str, str] | None = None) -> str:
    """Return the bearer token: ``token``, else ``token_file``, else the systemd credential, else ``""``.

    Raises:
        ConfigError: The token file cannot be read or is empty.
    """
    if cfg.token:
        return cfg.token.strip()
    env = os.environ if environ is None else environ
    path = Path(cfg.token_file).expanduser() if cfg.token_file else None
    if path is None and env.get("CREDENTIALS_DIRECTORY"):
        candidate = Path(env["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        path = candidate if candidate.is_file() else None
    if path is None:
        return ""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ConfigError(f"cannot read preview token file {path}: {reason}") from None
    if not token:
        raise ConfigError(f"preview token file {path} is empty")
    return token


def check_access(cfg: PreviewConfig, environ: Mapping[str, str] | None = None) -> Access:
    """Parse the address, find the token and apply the rule: beyond loopback, a token or ``insecure``.

    Args:
        cfg: The ``[preview]`` section, with ``listen`` set.
        environ: Where ``CREDENTIALS_DIRECTORY`` is looked up (default: ``os.environ``).

    Raises:
        ConfigError: A bad address, an unreadable or empty token file, or an address beyond loopback
            without a token and without ``insecure``.
    """
    host, port = parse_listen(cfg.listen)
    access = Access(host, port, resolve_token(cfg, environ))
    if not access.loopback and not access.token and not cfg.insecure:
        raise ConfigError(
            f"the preview would listen on {host}, beyond this machine, without a token: set --preview-token-file "
            f"(preview.token_file, or the systemd credential {CREDENTIAL_NAME}) or --preview-token, or pass "
            "--preview-insecure (preview.insecure) to allow anyone on the network to watch"
        )
    return access
