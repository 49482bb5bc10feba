"""The edgepose package: its version and its one-line description (imports nothing of its own)."""

__version__ = "0.1.0"
#: What edgepose is, in one line: the CLI's description, pyproject's and the systemd unit's (a test checks them).
DESCRIPTION = (
    "Headless pose estimation for Raspberry Pi and Coral EdgeTPU (MoveNet INT8 by default, PoseNet, BlazePose), "
    "published over MQTT"
)
