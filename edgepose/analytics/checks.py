"""Validation helpers shared by the analytics config dataclasses."""

from __future__ import annotations

import math

from edgepose.errors import ConfigError


def check_number(where: str, value: float, low: float, high: float = math.inf, *, open_low: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number in ``[low, high]`` (``(low, high]``).

    Args:
        where: The key named in the message, e.g. ``"analytics.enter_s"``.
        value: The value to check.
        low: Smallest allowed value.
        high: Largest allowed value.
        open_low: Exclude ``low`` itself.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, not {value!r}")
    if value < low or value > high or (open_low and value == low):
        bound = f"> {low:g}" if open_low else f">= {low:g}"
        if math.isfinite(high):
            bound += f" and <= {high:g}"
        raise ConfigError(f"{where} must be {bound}, not {value!r}")
