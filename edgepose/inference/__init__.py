"""Model execution: interpreter backends, MoveNet pre/post-processing and crop tracking."""
