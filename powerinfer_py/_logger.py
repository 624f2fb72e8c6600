"""Routes the C library's diagnostics into Python's ``logging`` (logger "powerinfer_py").

The library never writes to stdout; with this callback installed it does not write anywhere
itself. ``set_verbose(False)`` raises the library's level so that nothing below an error is even
formatted, and the logger's own level decides what reaches the handlers.
"""
from __future__ import annotations

import logging

from ._lib import ffi, lib

logger = logging.getLogger("powerinfer_py")

_LEVELS = {
    lib.PI_LOG_DEBUG: logging.DEBUG,
    lib.PI_LOG_INFO: logging.INFO,
    lib.PI_LOG_WARN: logging.WARNING,
    lib.PI_LOG_ERROR: logging.ERROR,
}


@ffi.callback("void(int32_t, const char *, void *)")
def _on_log(level, text, _user_data):  # pragma: no cover - exercised through the C library
    try:
        logger.log(_LEVELS.get(level, logging.INFO), ffi.string(text).decode("utf-8", "replace"))
    except Exception:  # a logging failure must never unwind into C
        pass


lib.pi_log_set(_on_log, ffi.NULL)


def set_verbose(verbose: bool) -> None:
    """verbose=True lets the library's info messages through; False keeps only errors."""
    lib.pi_log_set_level(lib.PI_LOG_INFO if verbose else lib.PI_LOG_ERROR)
    if verbose and not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()  # stderr
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


set_verbose(False)
