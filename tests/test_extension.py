"""The compiled module `clusterstate._core` is built, importable, and agrees with the installed distribution."""

from importlib.metadata import version

import clusterstate._core as core


def test_module_name() -> None:
    assert core.__name__ == "clusterstate._core"


def test_version_matches_distribution() -> None:
    # maturin takes the distribution's version from Cargo's [workspace.package]; the Rust core reports the same one.
    assert core.__version__ == version("clusterstate")
