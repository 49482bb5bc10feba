"""Connection settings for the MQTT sink: broker address, user, password, TLS and device id.

Pure standard library (no paho), so it is testable and importable everywhere. The password is read
from a file (``mqtt.password_file``) or from systemd's credential directory
(``$CREDENTIALS_DIRECTORY/mqtt_password``, set by ``LoadCredential=``) and is never logged or printed.
A password in the URL still works, with a warning: ``ps`` and config files show it.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edgepose.config import MqttConfig
from edgepose.errors import ConfigError
from edgepose.system_install import instance_name

#: File name looked up in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=mqtt_password:…``).
CREDENTIAL_NAME = "mqtt_password"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_INVALID_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]+")


@dataclass(frozen=True)
class BrokerSettings:
    """Everything needed to open the connection.

    Attributes:
        host: Broker host name or address.
        port: TCP port.
        tls: Whether to use TLS (``mqtts://``).
        username: User from the URL, or ``None``.
        password: Password from the file or credential, or ``None``; excluded from ``repr``.
        ca_file: CA bundle to verify the broker with (``""``: the system's).
        cert_file: Client certificate (``""``: none).
        key_file: Client key (``""``: none or inside ``cert_file``).
        tls_insecure: Skip the broker host name check (the chain is still verified).
        password_in_url: The password came from the URL (works, but ``ps`` and config files show it).
    """

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False
    password_in_url: bool = False

    @property
    def url(self) -> str:
        """The broker as a printable URL (never with the password)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def sanitize_device_id(name: str) -> str:
    """Turn any name into a topic-safe device id (``[a-zA-Z0-9_-]``, never empty)."""
    return _INVALID_ID_CHARS.sub("_", name).strip("_") or "edgepose"


def device_id(cfg: MqttConfig, environ: Mapping[str, str] | None = None) -> str:
    """Return the configured device id, else the ``edgepose@NAME.service`` instance's name, else the host name.

    Args:
        cfg: The ``[mqtt]`` section.
        environ: Where the instance name is read (:data:`~edgepose.system_install.INSTANCE_ENV`; default
            ``os.environ``).
    """
    return cfg.device_id or sanitize_device_id(instance_name(environ) or socket.gethostname())


def read_password(cfg: MqttConfig, environ: Mapping[str, str]) -> str | None:
    """Read the broker password from ``cfg.password_file`` or ``$CREDENTIALS_DIRECTORY/mqtt_password``.

    Returns:
        The password without its trailing newline, or ``None`` when neither is set.

    Raises:
        ConfigError: The configured password file is missing, unreadable or empty (an empty systemd
            credential means "no password": the unit supplies one as the default).
    """
    if cfg.password_file:
        path = Path(cfg.password_file)
    elif environ.get("CREDENTIALS_DIRECTORY"):
        path = Path(environ["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        if not path.is_file():
            return None
    else:
        return None
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise ConfigError(f"mqtt password file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read mqtt password file {path}: {reason}") from None
    if not password:
        if not cfg.password_file:  # the unit's SetCredential= default: no password configured
            return None
        raise ConfigError(f"mqtt password file {path} is empty")
    return password


def broker_settings(cfg: MqttConfig, environ: Mapping[str, str]) -> BrokerSettings:
    """Build the connection settings from a validated ``[mqtt]`` section.

    The password file (or systemd credential) wins over a password in the URL.

    Raises:
        ConfigError: A password without a user, or an unreadable password file.
    """
    parts = urlsplit(cfg.url)
    username = unquote(parts.username) if parts.username else None
    password = read_password(cfg, environ)
    in_url = password is None and parts.password is not None
    if in_url:
        password = unquote(parts.password or "")
    if password is not None and not username:
        raise ConfigError("an mqtt password needs a user name in the url: mqtt://USER@host")
    return BrokerSettings(
        host=parts.hostname or "",
        port=parts.port or DEFAULT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=username,
        password=password,
        ca_file=cfg.ca_file,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        tls_insecure=cfg.tls_insecure,
        password_in_url=in_url,
    )


def tls_context(settings: BrokerSettings) -> ssl.SSLContext:
    """Build the TLS context: the CA to trust, the client certificate, the host name check.

    Raises:
        ConfigError: A CA, certificate or key file that cannot be loaded (or a key that is encrypted).
    """
    s = settings
    try:
        context = ssl.create_default_context(cafile=s.ca_file or None)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ConfigError(f"cannot load MQTT CA file {s.ca_file or '(system bundle)'}: {_reason(exc)}") from None
    if s.cert_file:
        try:  # an encrypted key fails here instead of prompting on a terminal nobody watches
            context.load_cert_chain(s.cert_file, s.key_file or None, password=lambda: b"")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load MQTT client certificate {s.cert_file} with key "
                              f"{s.key_file or '(none given)'}: {_reason(exc)}; --mqtt-key must be the "
                              "unencrypted key of --mqtt-cert") from None  # fmt: skip
    context.check_hostname = not s.tls_insecure
    return context


def _reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(exc).__name__
