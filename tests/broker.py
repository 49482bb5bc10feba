"""A real mosquitto for tests: own config on a free loopback port, start/stop/kill/restart; throwaway TLS.

Never touches a system broker: every instance gets its own folder, config file and port.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    """One mosquitto process with its own config in ``folder``.

    Args:
        folder: Where the config, password, ACL and log files go.
        port: Listener port (default: a free one, kept across restarts).
        tls: ``(ca, cert, key)`` paths for a TLS listener that also demands a client certificate.
        users: ``{user: password}``; when given, anonymous access is off.
        acl: Text of an ACL file (mosquitto syntax).
    """

    folder: Path
    port: int = field(default_factory=free_port)
    tls: tuple[Path, Path, Path] | None = None
    users: dict[str, str] | None = None
    acl: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """mosquitto's own log file."""
        return self.folder / "mosquitto.log"

    def _write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            f"log_dest file {self.log_path}",
            "log_type all",
            "connection_messages true",
            f"user {getpass.getuser()}",  # as root, mosquitto would otherwise switch to "mosquitto"
        ]
        if self.users is not None:
            passwd = self.folder / "passwd"
            passwd.write_text("")
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            acl = self.folder / "acl"
            acl.write_text(self.acl)
            lines.append(f"acl_file {acl}")
        if self.tls is not None:
            ca, cert, key = self.tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}", "require_certificate true"]
        conf = self.folder / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> Broker:
        """Start mosquitto and wait until the port accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        conf = self._write_config()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}\n{log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL): clients see their connection drop."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def add_user(self, user: str, password: str) -> None:
        """Add a user to the password file and make the running broker reload it (SIGHUP)."""
        assert self.users is not None and self.proc is not None
        self.users[user] = password
        subprocess.run([MOSQUITTO_PASSWD, "-b", str(self.folder / "passwd"), user, password], check=True)
        self.proc.send_signal(signal.SIGHUP)

    def restart(self) -> Broker:
        """Kill and start again on the same port (retained messages are gone: no persistence)."""
        self.kill()
        return self.start()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """Create a throwaway CA; return ``(cert, key)``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}", *ca_ext)  # fmt: skip
    return cert, key


def make_cert(folder: Path, name: str, ca: tuple[Path, Path], server: bool) -> tuple[Path, Path]:
    """Create a certificate signed by ``ca`` (for 127.0.0.1/localhost when ``server``); return ``(cert, key)``."""
    cert, key, csr, ext = (folder / f"{name}{s}" for s in (".pem", ".key", ".csr", ".ext"))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", csr, "-subj", f"/CN={name}")  # fmt: skip
    usage = "serverAuth" if server else "clientAuth"
    san = "subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else ""
    ext.write_text(f"{san}basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                   f"extendedKeyUsage={usage}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")  # fmt: skip
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", cert,
             "-days", "2", "-extfile", ext)  # fmt: skip
    return cert, key


def _openssl(*args: Any) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


class Subscriber:
    """A real paho client that records every message it receives (topic, payload, retain, arrival time)."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("#",), **tls_and_auth: Any) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool, float]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{os.getpid()}-{id(self)}")
        if tls_and_auth.get("username"):
            self.client.username_pw_set(tls_and_auth["username"], tls_and_auth.get("password"))
        if tls_and_auth.get("ca"):
            self.client.tls_set(ca_certs=str(tls_and_auth["ca"]), certfile=str(tls_and_auth["cert"]),
                                keyfile=str(tls_and_auth["key"]))  # fmt: skip
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self._subscribed.wait(10), "test subscriber did not get a SUBACK"

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(t, 1) for t in self._topics])

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain), time.monotonic()))

    def on(self, topic: str) -> list[bytes]:
        """Payloads received on ``topic``, oldest first."""
        with self._lock:
            return [p for t, p, _, _ in self.messages if t == topic]

    def topics(self) -> set[str]:
        """Every topic a message arrived on."""
        with self._lock:
            return {t for t, _, _, _ in self.messages}

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> bool:
        """Poll ``predicate(self)`` until true or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return bool(predicate(self))

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, timeout: float = 3.0, **tls_and_auth: Any) -> bytes | None:
    """The retained payload the broker holds for ``topic`` now, read with a fresh subscription."""
    sub = Subscriber(port, (topic,), **tls_and_auth)
    try:
        sub.wait_for(lambda s: any(t == topic and r for t, _, r, _ in s.messages), timeout)
        with sub._lock:
            found = [p for t, p, r, _ in sub.messages if t == topic and r]
        return found[-1] if found else None
    finally:
        sub.close()
