"""The numeric filters shared by inference and the analytics."""

from __future__ import annotations

import numpy as np

from edgepose.filters import LowPass


def test_low_pass_of_crop_region() -> None:
    lp = LowPass(0.9)
    assert np.allclose(lp(np.array([0.0, 0.0, 100.0, 100.0])), [0, 0, 100, 100])
    out = lp(np.array([10.0, 0.0, 110.0, 100.0]))
    assert np.allclose(out, [9.0, 0.0, 109.0, 100.0])
    lp.reset()
    assert np.allclose(lp(np.array([50.0, 50.0, 60.0, 60.0])), [50, 50, 60, 60])
