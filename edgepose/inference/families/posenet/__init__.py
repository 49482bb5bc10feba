"""PoseNet multi-pose (Coral's MobileNet v1): every person in the frame, INT8 on the CPU or the Coral EdgeTPU."""
