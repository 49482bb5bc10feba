"""Every config key with a fixed set of values, and those values: the one home of each list.

The code that acts on a value (delegate selection, the runtimes, flip TTA, the preview's drawing, the
analytics) imports its list from here, so validation, flags and the configuration reference never
disagree with it.
"""

from __future__ import annotations

#: Where the model runs: ``auto`` tries ``edgetpu`` → ``xnnpack`` → ``cpu``.
DELEGATES: tuple[str, ...] = ("auto", "edgetpu", "xnnpack", "cpu")
#: TFLite interpreter packages: import name → the distribution that provides it (what ``pip install`` takes).
RUNTIME_DISTS: dict[str, str] = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}
#: What ``runtime =`` accepts: ``auto`` or an import name.
RUNTIME_CHOICES: tuple[str, ...] = ("auto", *RUNTIME_DISTS)
#: Other spellings accepted for a runtime (distribution names and short forms).
RUNTIME_ALIASES: dict[str, str] = {
    **{dist: name for name, dist in RUNTIME_DISTS.items()},
    "litert": "ai_edge_litert",
    "tflite": "tflite_runtime",
}
#: Test-time augmentation modes for still images: none, or the crop and its mirror image averaged.
TTA_MODES: tuple[str, ...] = ("none", "flip")
#: The preview's privacy modes: the camera picture, a blank canvas with only the skeleton, a blurred picture.
PREVIEW_MODES: tuple[str, ...] = ("video", "skeleton", "blur")
#: What a snapshot shows (``[snapshot] mode``), each as the preview mode whose picture it is (drawn by
#: :func:`edgepose.sinks.drawing.render`): the skeleton on a blank canvas, on the blurred picture, on the picture.
SNAPSHOT_MODES: dict[str, str] = {"skeleton": "skeleton", "blurred": "blur", "full": "video"}
#: Keypoint smoothing: ``auto`` (on for video and cameras, off for still images and ``analyze``), on, off.
SMOOTHING_MODES: tuple[str, ...] = ("auto", "on", "off")
#: The exercises whose repetitions the analytics count.
EXERCISES: tuple[str, ...] = ("squat", "pushup", "jumping_jack")

#: ``(section, key)`` → its accepted values. A key's default is accepted too (``exercise = ""``: none).
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("model", "runtime"): RUNTIME_CHOICES,
    ("model", "delegate"): DELEGATES,
    ("model", "tta"): TTA_MODES,
    ("preview", "mode"): PREVIEW_MODES,
    ("snapshot", "mode"): tuple(SNAPSHOT_MODES),
    ("smoothing", "mode"): SMOOTHING_MODES,
    ("analytics", "exercise"): EXERCISES,
}
