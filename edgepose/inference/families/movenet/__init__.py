"""MoveNet single-pose (Lightning, Thunder): one person, 17 keypoints, INT8 on the CPU or the Coral EdgeTPU."""
