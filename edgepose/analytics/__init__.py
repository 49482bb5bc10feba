"""On-device answers from the pose stream: smoothing, presence, falls and exercise repetitions.

Every part is a pure state machine over :class:`~edgepose.pose.PoseResult`s, driven by the frames'
own timestamps, so a recording replays identically at any speed.
"""

from __future__ import annotations

from edgepose.analytics.pipeline import Analytics

__all__ = ["Analytics"]
