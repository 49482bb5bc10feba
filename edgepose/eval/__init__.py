"""Accuracy evaluation on COCO-format keypoint files: ``edgepose eval``.

``coco`` reads and builds annotation files, ``crop`` cuts one square crop per person, ``predict``
runs an estimator over them, ``metrics`` and ``cocoeval`` score the predictions, ``report`` prints them.
"""
