"""BlazePose (MediaPipe): a person detector, then 33 landmarks; float32, on the CPU only."""
