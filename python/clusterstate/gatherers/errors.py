"""Errors of the gatherers: a sample that failed in a way worth telling apart."""

from __future__ import annotations

from clusterstate.errors import ClusterStateError

__all__ = ["MalformedOutputError", "MonitorBusyError"]


class MalformedOutputError(ClusterStateError, ValueError):
    """A command or library returned something the monitor cannot turn into its model."""


class MonitorBusyError(ClusterStateError, RuntimeError):
    """The monitor's previous blocking call is still running in its thread (it hung past its timeout)."""
