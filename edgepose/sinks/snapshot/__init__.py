"""Snapshots: a JPEG of each fall and long lie and one on request, for MQTT, the preview and a folder."""
