"""Optional extras (torch, scipy, matplotlib): imported when a tool needs them, with a clear error
naming the extra to install when they are missing."""
from __future__ import annotations


class MissingDependencyError(RuntimeError):
    """An optional extra (scipy, matplotlib, torch) is needed for what was asked."""


def _require(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{what} needs {module.split('.')[0]} (pip install \"powerinfer-py[train]\"): {e}") from e
