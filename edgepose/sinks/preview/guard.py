"""Who may talk to the preview: the ``Host`` / ``Origin`` check against DNS rebinding.

A preview on 127.0.0.1 without a token trusts everyone on this machine. A web page elsewhere can still
reach it through the browser of someone on the box (or at the far end of an ``ssh -L`` tunnel) by making
its own DNS name resolve to 127.0.0.1: the browser then sends that name as ``Host``. So a token-less
loopback preview only answers requests whose ``Host`` (and ``Origin``, when a browser sends one) name
this machine. Pure functions over header values.
"""

from __future__ import annotations

from edgepose.config.preview_access import is_loopback


def host_is_loopback(authority: str) -> bool:
    """Whether a ``Host`` header value names this machine: ``127.0.0.1``, ``localhost`` or ``[::1]``, any port.

    The port is not compared: a tunnel (``ssh -L 9000:127.0.0.1:8080``) changes it, and the name is
    what a rebinding attacker controls.
    """
    value = authority.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return False
        name, rest = value[1:end], value[end + 1 :]
        if ":" not in name:  # brackets hold IPv6 addresses only
            return False
    else:
        name = value.partition(":")[0]
        rest = value[len(name) :]
    port = rest[1:]
    if rest and not (rest[0] == ":" and (port == "" or (port.isdigit() and len(port) <= 5))):
        return False
    return bool(name) and is_loopback(name)


def origin_is_loopback(origin: str) -> bool:
    """Whether an ``Origin`` header value is a page served from this machine (``http://localhost:8080``).

    ``null`` (sandboxed frames, ``file:`` pages) and every other site are not.
    """
    scheme, sep, authority = origin.strip().partition("://")
    if not sep or scheme.lower() not in ("http", "https") or "/" in authority or "@" in authority:
        return False
    return host_is_loopback(authority)
