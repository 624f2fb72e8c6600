"""OpenAI-compatible HTTP server for powerinfer_py (needs the ``server`` extra:
``pip install 'powerinfer-py[server]'``).

    python -m powerinfer_py.server --model model.gguf [--port 8000] [--api-key KEY]
    powerinfer-py serve --model model.gguf
"""
from .app import create_app, load_llama
from .settings import Settings, load_settings

__all__ = ["create_app", "load_llama", "Settings", "load_settings", "main"]


def main(argv=None) -> int:
    from .__main__ import main as _main

    return _main(argv)
