"""What every command prints through: rich consoles for stdout and stderr, and the progress bar of long work."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["progress", "stdout_console"]

_PIPE_WIDTH = 160


def progress(console: Console | None = None) -> Progress:
    """A transient progress bar on ``console`` (default: stderr); tasks give a description and a ``unit`` field."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )


def stdout_console() -> Console:
    """The console a command's result goes to."""
    # Piped output has no width; rich would assume 80 columns and squeeze the table. Rows that
    # stay whole are more useful in a log or a file (COLUMNS still wins when set).
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=_PIPE_WIDTH)
    return console
