"""Brightspot, a model family that lives only in the tests: the brightest cell of the frame is the one person.

Laid out like the real families: :mod:`.model` (its model file, manifest entry and pure functions),
:mod:`.estimator` and :mod:`.family` (its declaration). tests/test_families.py adds it to a copy of the
registry and of the manifest and hands both to the factory.
"""
