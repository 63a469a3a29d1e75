"""Helpers shared by the test modules (``pythonpath`` puts ``tests/`` on the import path): a cached trace, envelopes
and the master's consistency check, builders for reducer tests, and the process-spawning fixture's machinery."""
