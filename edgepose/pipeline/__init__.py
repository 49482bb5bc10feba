"""The pipeline: capture thread and frame hand-over, the inference loop, health counters."""
