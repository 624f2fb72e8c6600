"""python -m powerinfer_py.server --model PATH [flags]: serve one model over HTTP."""
from __future__ import annotations

import argparse
import sys


def build_parser(parser: argparse.ArgumentParser = None) -> argparse.ArgumentParser:
    from .settings import add_settings_arguments

    if parser is None:
        parser = argparse.ArgumentParser(prog="python -m powerinfer_py.server",
                                         description="OpenAI-compatible server for one GGUF model.")
    add_settings_arguments(parser)
    return parser


def serve(args: argparse.Namespace) -> int:
    """Loads the model and runs uvicorn until interrupted."""
    import uvicorn
    from pydantic import ValidationError

    from .app import create_app
    from .settings import settings_from_args

    try:
        settings = settings_from_args(args)
    except ValidationError as e:
        print(f"powerinfer-py serve: bad settings:\n{e}", file=sys.stderr)
        return 2
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                ssl_keyfile=settings.ssl_keyfile, ssl_certfile=settings.ssl_certfile)
    return 0


def main(argv=None) -> int:
    return serve(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
