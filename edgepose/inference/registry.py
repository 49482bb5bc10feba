"""The model families edgepose knows, by the name the manifest's ``family`` uses.

An explicit dict: nothing is registered by import side effects. Adding a family is its folder under
:mod:`edgepose.inference.families`, one entry here and its manifest entries (models/manifest.toml);
docs/families.md says what each holds.
"""

from __future__ import annotations

from edgepose.inference.families.blazepose.family import BLAZEPOSE
from edgepose.inference.families.movenet.family import MOVENET
from edgepose.inference.families.posenet.family import POSENET
from edgepose.inference.family import Family

#: The families by name, in the order a bare ``.tflite`` file is offered to their ``recognises``.
FAMILIES: dict[str, Family] = {
    "movenet": MOVENET,
    "posenet": POSENET,
    "blazepose": BLAZEPOSE,
}
