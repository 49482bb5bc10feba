"""Tiny numeric filters shared by inference and the analytics (pure numpy, no state beyond the last output)."""

from __future__ import annotations

import numpy as np


class LowPass:
    """Exponential smoothing of a small vector (the tracker's crop region): ``out += alpha * (new - out)``."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self._value: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the past: the next value passes unchanged."""
        self._value = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Filter one sample and return the filtered values."""
        raw = np.asarray(values, dtype=np.float64)
        if self._value is None or self._value.shape != raw.shape:
            self._value = np.array(raw)
        else:
            self._value = self._value + self.alpha * (raw - self._value)
        return np.array(self._value)
