"""One way to release native resources: close(), a with-block, or garbage collection."""
from __future__ import annotations


class Closeable:
    """Mixin for classes that own library handles and define close() (idempotent)."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass  # interpreter shutdown: the library may already be gone
