"""The model families, one folder each: pure pre- and post-processing, trackers, the estimator, the declaration.

Each folder's ``family.py`` declares its :class:`~edgepose.inference.family.Family`; the registry
(:mod:`edgepose.inference.registry`) names them. docs/families.md says what a new family needs.
"""
