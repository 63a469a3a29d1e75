"""Checked types for the ``clusterstate`` command's flags.

Each function here builds an argparse ``type=``: argparse calls it on the text the user typed and
reports an :class:`argparse.ArgumentTypeError` as one line naming the flag as typed, e.g.
``clusterstate demo: argument --duration: must be a finite number in (0, 600], not 'inf'``.

Example:
    >>> parser = argparse.ArgumentParser()
    >>> _ = parser.add_argument("--loss", type=number(float, 0.0, 1.0), default=0.0)
    >>> parser.parse_args(["--loss", "0.25"]).loss
    0.25
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeAlias, TypeVar

__all__ = ["MAX_SEED", "OneLineParser", "Subcommands", "config_dir", "existing_dir", "number", "seed", "writable_dir"]

N = TypeVar("N", int, float)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit status 2).

    The usage is one ``--help`` away; repeating it above every typo hides the message.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


Subcommands: TypeAlias = "argparse._SubParsersAction[OneLineParser]"
"""What ``OneLineParser.add_subparsers`` returns: each of its subparsers is a :class:`OneLineParser` too."""


def number(kind: type[N], low: N, high: N, *, low_open: bool = False) -> Callable[[str], N]:
    """A flag type for an ``int`` or a finite ``float`` in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    noun = "an integer" if kind is int else "a finite number"
    interval = f"{'(' if low_open else '['}{_show(low)}, {_show(high)}]"

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun} in {interval}, not {text!r}") from None
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            raise argparse.ArgumentTypeError(f"must be {noun} in {interval}, not {text!r}")
        return value

    return parse


def _show(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


MAX_SEED = 2**63 - 1
"""The largest seed a command takes."""
seed = number(int, 0, MAX_SEED)
"""A flag type for a seed, 0 to :data:`MAX_SEED`."""


def existing_dir(text: str) -> Path:
    """A flag type for a directory that exists."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory" if path.exists() else f"{text} does not exist")
    return path


def config_dir(text: str) -> Path:
    """A flag type for a directory that exists or can be created: the path and its parents are no files."""
    path = Path(text)
    for ancestor in (path, *path.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise argparse.ArgumentTypeError(f"{ancestor} is not a directory")
            break
    return path


def writable_dir(text: str) -> Path:
    """A flag type for a directory files can be written into; a missing one is created (with its parents)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot write to {text}: {error.strerror or error}") from None
    return path
