"""Every failure a request can cause becomes one line of JSON, ``{"error": "..."}``, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dpfusion.errors import DPFusionError
from dpfusion.serve.jobs import Busy

log = logging.getLogger("dpfusion.serve")


def one_line(message: object) -> str:
    return " ".join(str(message).split())


def error(status: int, message: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)


def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    return error(422, f"{field}: {first.get('msg')}" if field else first.get("msg"))


def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("request %s %s failed", request.method, request.url.path)
    return error(500, f"internal error ({type(exc).__name__}); the server keeps running")


def install(app: FastAPI) -> None:
    """Register the handlers that turn library, queue, validation and routing errors into JSON."""
    app.add_exception_handler(DPFusionError, lambda _request, exc: error(400, exc))
    app.add_exception_handler(Busy, lambda _request, exc: error(503, exc, {"Retry-After": str(exc.retry_after)}))
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, lambda _request, exc: error(exc.status_code, exc.detail, exc.headers))
    app.add_exception_handler(Exception, _internal)
