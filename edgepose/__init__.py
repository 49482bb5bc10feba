"""edgepose: headless MoveNet pose estimation for Raspberry Pi and Coral EdgeTPU."""

__version__ = "0.1.0"
