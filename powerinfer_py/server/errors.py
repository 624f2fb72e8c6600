"""OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}}.

Exceptions are mapped by type, never by reading their messages:
  ContextFullError              -> 400 context_length_exceeded
  other ValueError (bad input)  -> 400 invalid_request_error
  anything else                 -> 500 internal_server_error (traceback logged)
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ContextFullError

logger = logging.getLogger("powerinfer_py.server")


class APIError(Exception):
    """An error the server decided on itself (auth, busy, not found)."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: Optional[str] = None, code: Optional[str] = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code


def error_body(message: str, type_: str, param: Optional[str] = None, code: Optional[str] = None) -> Dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, message: str, type_: str, param: Optional[str] = None,
                   code: Optional[str] = None, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse(error_body(message, type_, param, code), status_code=status, headers=headers)


def exception_response(exc: BaseException) -> JSONResponse:
    """The response for an exception raised while serving a request."""
    if isinstance(exc, APIError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code, headers)
    if isinstance(exc, ContextFullError):
        return error_response(400, str(exc), "invalid_request_error", "messages", "context_length_exceeded")
    if isinstance(exc, ValueError):
        return error_response(400, str(exc), "invalid_request_error")
    logger.error("request failed", exc_info=(type(exc), exc, exc.__traceback__))
    return error_response(500, f"{type(exc).__name__}: {exc}", "internal_server_error")


def _validation_message(exc: RequestValidationError) -> tuple:
    errs = exc.errors()
    if not errs:
        return "invalid request", None
    first = errs[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {first.get('msg')}", None
    msg = first.get("msg", "invalid value")
    more = f" (and {len(errs) - 1} more problems)" if len(errs) > 1 else ""
    return (f"{param}: {msg}{more}" if param else f"{msg}{more}"), param


def install_error_handlers(app) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return error_response(400, message, "invalid_request_error", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), "invalid_request_error",
                              code="not_found" if exc.status_code == 404 else None)

    @app.exception_handler(APIError)
    async def _api(request, exc: APIError):
        return exception_response(exc)

    @app.exception_handler(Exception)
    async def _other(request, exc: Exception):
        return exception_response(exc)
