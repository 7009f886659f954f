"""The FastAPI app: the page under ``/``, the JSON API under ``/api`` (OpenAPI at ``/docs``)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from dpfusion.api import DEFAULT_STEPS, Model
from dpfusion.errors import DPFusionError
from dpfusion.metrics import available_metrics
from dpfusion.serve import errors
from dpfusion.serve.jobs import JobQueue
from dpfusion.serve.limits import FORM_OVERHEAD, BodyLimit, Limits, size_text
from dpfusion.serve.scoring import PAGE_METRICS
from dpfusion.serve.service import SAMPLE, DecodeRequest, Service, safe_stem
from dpfusion.serve.sessions import Session, SessionStore
from dpfusion.serve.uploads import png_bytes

NO_STORE = {"Cache-Control": "no-store"}
Quality = Annotated[float | None, Form(description="rate index (default model) or zoo quality")]
Tau = Annotated[float | None, Form(ge=0.0, le=1.0, description="1 = base codec, 0 = most realistic")]
TauMap = Annotated[UploadFile | None, File(description="greyscale PNG, white = fidelity")]
Steps = Annotated[int, Form(description="DDIM steps")]
Seed = Annotated[int, Form(description="seed of the initial noise")]


class Server:
    """The state one app holds: the model service, its job queue and the sessions."""

    def __init__(self, model: Model, limits: Limits, sample: Path) -> None:
        self.service = Service(model, limits, sample)
        self.queue = JobQueue(limits.queue_size)
        self.sessions = SessionStore(limits.session_ttl_s, limits.max_sessions)

    def session(self, sid: str) -> Session:
        session = self.sessions.get(sid)
        if session is None:
            raise HTTPException(404, "unknown or expired session; compress or open a file again")
        return session

    def info(self, sid: str, session: Session) -> dict[str, object]:
        file = session.file
        return {
            "session": sid,
            "codec": file.codec,
            "quality": file.quality,
            "width": file.width,
            "height": file.height,
            "bytes": len(session.data),
            "bpp": 8 * len(session.data) / file.pixels,
            "suggested_tau": file.tau,
            "has_original": session.original is not None,
            "name": session.stem,
            "notes": session.notes,
        }


async def _upload(file: UploadFile, limits: Limits) -> bytes:
    data = await file.read()
    if len(data) > limits.max_upload_bytes:
        limit = size_text(limits.max_upload_bytes)
        raise DPFusionError(f"upload is {size_text(len(data))}, over the limit of {limit}")
    return data


def create_app(model: Model, limits: Limits | None = None, sample: Path = SAMPLE) -> FastAPI:
    """An app serving one loaded model; ``sample`` is the photo behind "use the sample" (server config)."""
    limits = limits or Limits()
    state = Server(model, limits, sample)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        state.queue.close()

    app = FastAPI(title="dpfusion serve", version="1", lifespan=lifespan)
    app.state.server = state
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes + FORM_OVERHEAD)
    app.mount("/static", StaticFiles(packages=[("dpfusion.serve", "static")]), name="static")
    page = resources.files("dpfusion.serve").joinpath("static/index.html").read_text()
    app.get("/", response_class=HTMLResponse, include_in_schema=False)(lambda: HTMLResponse(page))
    _session_routes(app, state)
    _image_routes(app, state)
    return app


def _session_routes(app: FastAPI, state: Server) -> None:
    """Creating, describing, re-encoding and forgetting sessions."""
    service, queue, limits = state.service, state.queue, state.service.limits

    @app.get("/api/config", summary="the model, its rates, the limits and which metrics can run")
    def config() -> dict[str, object]:
        availability = available_metrics()
        return {
            "model": model_name(service.model),
            "fusion": service.model.fusion is not None,
            "rates": service.rates(),
            "default_steps": min(DEFAULT_STEPS, limits.max_steps),
            "limits": vars(limits),
            "metrics": {name: availability.get(name) for name in PAGE_METRICS},
        }

    @app.post("/api/compress", summary="compress an uploaded photo (or the sample) into a new session")
    async def compress(
        image: Annotated[UploadFile | None, File()] = None,
        sample: Annotated[bool, Form()] = False,
        quality: Quality = None,
    ) -> dict[str, object]:
        if (image is None) == (not sample):
            raise DPFusionError("give an image upload or sample=true, not both and not neither")
        photo = await _upload(image, limits) if image is not None else None
        stem = safe_stem(image.filename if image is not None else None)
        session = await queue.run(service.compress, photo, quality, stem)
        return state.info(state.sessions.add(session), session)

    @app.post("/api/open", summary="open an existing .dpf file into a new session")
    async def open_dpf(dpf: Annotated[UploadFile, File()]) -> dict[str, object]:
        data = await _upload(dpf, limits)
        session = await queue.run(service.open, data, safe_stem(dpf.filename, "opened"))
        return state.info(state.sessions.add(session), session)

    @app.get("/api/sessions/{sid}", summary="what a session holds: size, bytes, bpp, rate")
    def session_info(sid: str) -> dict[str, object]:
        return state.info(sid, state.session(sid))

    @app.post("/api/sessions/{sid}/rate", summary="re-encode the session's original at another rate")
    async def rate(sid: str, quality: Annotated[float, Form()]) -> dict[str, object]:
        session = await queue.run(service.recompress, state.session(sid), quality)
        state.sessions.replace(sid, session)
        return state.info(sid, session)

    @app.delete("/api/sessions/{sid}", summary="forget a session now instead of at expiry")
    def forget(sid: str) -> dict[str, bool]:
        state.sessions.remove(sid)
        return {"deleted": True}


def _image_routes(app: FastAPI, state: Server) -> None:
    """Decoding, scoring and downloading what a session holds."""
    service, queue, limits = state.service, state.queue, state.service.limits

    @app.post(
        "/api/sessions/{sid}/decode",
        summary="decode the session's bitstream at tau or a tau map: a PNG",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    async def decode(
        sid: str, tau: Tau = None, tau_map: TauMap = None, steps: Steps = DEFAULT_STEPS, seed: Seed = 0
    ) -> Response:
        request = DecodeRequest(tau, await _upload(tau_map, limits) if tau_map else None, steps, seed)
        session = state.session(sid)
        png = await queue.run(lambda: png_bytes(service.decode(session, request)))
        return Response(png, media_type="image/png", headers=NO_STORE)

    @app.post("/api/sessions/{sid}/metrics", summary="PSNR, MS-SSIM, LPIPS of a decode vs the original and tau = 1")
    async def metrics(
        sid: str, tau: Tau = None, tau_map: TauMap = None, steps: Steps = DEFAULT_STEPS, seed: Seed = 0
    ) -> dict[str, object]:
        request = DecodeRequest(tau, await _upload(tau_map, limits) if tau_map else None, steps, seed)
        return await queue.run(service.metrics, state.session(sid), request)

    @app.get("/api/sessions/{sid}/dpf", summary="the session's .dpf file", response_class=Response)
    def download(sid: str) -> Response:
        session = state.session(sid)
        headers = {"Content-Disposition": f'attachment; filename="{session.stem}.dpf"', **NO_STORE}
        return Response(session.data, media_type="application/octet-stream", headers=headers)

    @app.get("/api/sessions/{sid}/original.png", summary="the photo that was compressed", response_class=Response)
    async def original(sid: str) -> Response:
        session = state.session(sid)
        if session.original is None:
            raise HTTPException(404, "an opened .dpf has no original")
        return Response(await queue.run(png_bytes, session.original), media_type="image/png", headers=NO_STORE)


def model_name(model: Model) -> str:
    return f"{model.codec.name}" + (" + fusion" if model.fusion is not None else " (no fusion module: tau = 1 only)")
