"""Rust core of clusterstate, compiled from `rust/py` (hand-written stub, checked by `mypy.stubtest`)."""

# PyO3 appends every name added to the module to its `__all__`; keep this list in step (stubtest compares them).
__all__ = ["__version__"]

__version__: str
"""Version of the Rust core, equal to the `clusterstate` distribution's version."""
