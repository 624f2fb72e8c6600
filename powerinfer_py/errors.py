"""Exceptions raised by powerinfer_py, one class per status code of the C library.

File and input problems subclass ValueError (as llama-cpp-python raises ValueError for them), so
code written for llama-cpp-python keeps catching them; the finer classes let callers and the
server tell causes apart without reading messages.
"""
from __future__ import annotations


class PowerInferError(Exception):
    """Base of every error raised by the library. ``status`` is the C status name."""

    status = "PI_ERR_UNKNOWN"


class InvalidArgumentError(PowerInferError, ValueError):
    status = "PI_ERR_INVALID_ARGUMENT"


class ModelFileError(PowerInferError, ValueError):
    """The model file cannot be opened or read (missing, a directory, unreadable)."""

    status = "PI_ERR_IO"


class FileFormatError(PowerInferError, ValueError):
    """The file is not valid GGUF: bad magic, truncated, absurd sizes, overlapping data."""

    status = "PI_ERR_FORMAT"


class UnsupportedError(PowerInferError, ValueError):
    """A valid file using something this build does not implement (version, type, architecture)."""

    status = "PI_ERR_UNSUPPORTED"


class ContextFullError(PowerInferError, ValueError):
    """The tokens do not fit in the context window."""

    status = "PI_ERR_CONTEXT_FULL"


class OutOfMemoryError(PowerInferError, MemoryError):
    status = "PI_ERR_OUT_OF_MEMORY"


class NotCompiledError(PowerInferError, RuntimeError):
    """A backend (CUDA, Metal) that this build of the library does not contain."""

    status = "PI_ERR_NOT_COMPILED"


class AbortedError(PowerInferError, RuntimeError):
    status = "PI_ERR_ABORTED"


class InternalError(PowerInferError, RuntimeError):
    status = "PI_ERR_INTERNAL"


STATUS_ERRORS: dict[int, type[PowerInferError]] = {
    -1: InvalidArgumentError,
    -2: ModelFileError,
    -3: FileFormatError,
    -4: UnsupportedError,
    -5: OutOfMemoryError,
    -6: ContextFullError,
    -8: NotCompiledError,
    -9: AbortedError,
    -10: InternalError,
}
