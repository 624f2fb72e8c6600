"""The FastAPI application: OpenAI-compatible routes over one Llama.

    POST /v1/completions        text completion (stream: SSE chunks, then `data: [DONE]`)
    POST /v1/chat/completions   chat completion (same streaming)
    POST /v1/embeddings         mean-pooled embeddings (float or base64)
    GET  /v1/models             the one model
    GET  /health                liveness plus queue state (never needs the API key)
    POST /extras/tokenize, /extras/tokenize/count, /extras/detokenize
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import time
from typing import Any, Dict, Optional

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse

from .errors import APIError, error_response, exception_response, install_error_handlers
from .runner import Cancelled, ModelRunner
from .settings import Settings
from .types import (ChatCompletionRequest, CompletionRequest, DetokenizeRequest, EmbeddingRequest,
                    TokenizeRequest)


def load_llama(settings: Settings):
    from ..llama import Llama

    kw: Dict[str, Any] = dict(n_ctx=settings.n_ctx, n_batch=settings.n_batch, n_threads=settings.n_threads,
                              n_threads_batch=settings.n_threads_batch, n_gpu_layers=settings.n_gpu_layers,
                              seed=settings.seed, chat_format=settings.chat_format, embedding=settings.embedding,
                              use_mmap=settings.use_mmap, logits_all=settings.logits_all,
                              verbose=settings.verbose)
    if settings.sparse_mode is not None:
        kw["sparse_mode"] = settings.sparse_mode
    for k in ("offload_device", "vram_budget", "gpu_index", "offload_profile"):  # the GPU split, when asked for
        if getattr(settings, k) is not None:
            kw[k] = getattr(settings, k)
    return Llama(model_path=settings.model, **kw)


class _ProcessingTime:
    """ASGI middleware adding OpenAI's `openai-processing-ms` header (pure ASGI, so streams and
    disconnects pass through untouched)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()

        async def timed_send(message):
            if message["type"] == "http.response.start":
                ms = int((time.perf_counter() - start) * 1000)
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"openai-processing-ms", str(ms).encode())]
            await send(message)

        await self.app(scope, receive, timed_send)


def create_app(settings: Optional[Settings] = None, llama=None) -> FastAPI:
    """The application. settings default to the environment (POWERINFER_MODEL etc.); pass llama to
    serve an already loaded model."""
    if settings is None:
        from .settings import load_settings

        settings = load_settings()
    if llama is None:
        llama = load_llama(settings)
    runner = ModelRunner(llama, max_queue=settings.max_queue)
    alias = settings.model_alias or os.path.basename(settings.model)
    created = int(time.time())

    app = FastAPI(title="powerinfer-py", version="0.1.0",
                  description="OpenAI-compatible API over a local GGUF model")
    app.state.runner = runner
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(_ProcessingTime)

    async def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise APIError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'.",
                           "invalid_request_error", code="invalid_api_key")

    auth = [Depends(check_key)]

    def body_of(model):
        """A dependency reading the body as JSON whatever its content-type says (curl -d sends
        form-encoded), validated by model; every failure is a 400, never a crash."""
        async def parse(request: Request):
            raw = await request.body()
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise APIError(400, f"the request body is not valid JSON: {e}") from None
            try:
                return model.model_validate(data)
            except ValidationError as e:
                raise RequestValidationError(e.errors()) from None
        return parse

    async def respond(request: Request, body_stream: bool, work, stream_work):
        """Runs a non-streamed call, or starts a stream and wraps it in SSE."""
        try:
            if not body_stream:
                return await runner.run(work, request.is_disconnected)
            chunks = await runner.stream(stream_work, request.is_disconnected)
        except Cancelled:
            return error_response(499, "client closed the request", "invalid_request_error")
        except Exception as e:
            return exception_response(e)

        async def events():
            try:
                async for chunk in chunks:
                    yield {"data": json.dumps(chunk, ensure_ascii=False)}
                yield {"data": "[DONE]"}
            except Exception as e:  # after the first chunk the status is sent: report in-band
                yield {"data": json.dumps(json.loads(exception_response(e).body))}
            finally:
                await chunks.aclose()

        return EventSourceResponse(events(), ping=15)

    # ------------------------------------------------------------------ generation
    @app.post("/v1/completions", dependencies=auth, openapi_extra=_schema(CompletionRequest))
    @app.post("/v1/engines/copilot-codex/completions", dependencies=auth, include_in_schema=False)
    async def completions(request: Request, body: CompletionRequest = Depends(body_of(CompletionRequest))):
        kw = body.sampling_kwargs()
        kw.update(prompt=body.prompt, suffix=body.suffix, echo=body.echo, logprobs=body.logprobs, model=alias)
        grammar = _grammar(body.grammar)

        return await respond(request, body.stream, *_job_pair(llama.create_completion, kw, grammar))

    @app.post("/v1/chat/completions", dependencies=auth, openapi_extra=_schema(ChatCompletionRequest))
    async def chat_completions(request: Request, body: ChatCompletionRequest = Depends(body_of(ChatCompletionRequest))):
        kw = body.chat_kwargs()
        kw["model"] = alias
        grammar = _grammar(body.grammar)

        return await respond(request, body.stream, *_job_pair(llama.create_chat_completion, kw, grammar))

    # ------------------------------------------------------------------ embeddings
    @app.post("/v1/embeddings", dependencies=auth, openapi_extra=_schema(EmbeddingRequest))
    async def embeddings(request: Request, body: EmbeddingRequest = Depends(body_of(EmbeddingRequest))):
        if not getattr(llama, "embedding", False):
            raise APIError(400, "this server was started with --no-embedding", code="embeddings_disabled")
        if body.dimensions is not None and body.dimensions != llama.n_embd():
            raise APIError(400, f"dimensions must be {llama.n_embd()} for this model (no truncation)",
                           param="dimensions")
        try:
            out = await runner.run(lambda job: llama.create_embedding(body.input, model=alias),
                                   request.is_disconnected)
        except Cancelled:
            return error_response(499, "client closed the request", "invalid_request_error")
        if body.encoding_format == "base64":
            for item in out["data"]:
                item["embedding"] = base64.b64encode(
                    np.asarray(item["embedding"], dtype="<f4").tobytes()).decode("ascii")
        return out

    # ------------------------------------------------------------------ models, health
    @app.get("/v1/models", dependencies=auth)
    async def models():
        return {"object": "list", "data": [{
            "id": alias, "object": "model", "created": created, "owned_by": "me", "permissions": [],
            "meta": {"n_ctx": llama.n_ctx(), "n_vocab": llama.n_vocab(), "n_embd": llama.n_embd(),
                     "path": settings.model}}]}

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": alias, **runner.stats()}

    # ------------------------------------------------------------------ extras
    @app.post("/extras/tokenize", dependencies=auth, openapi_extra=_schema(TokenizeRequest))
    async def tokenize(body: TokenizeRequest = Depends(body_of(TokenizeRequest))):
        return {"tokens": llama.tokenize(body.input.encode("utf-8"), add_bos=body.add_bos, special=body.special)}

    @app.post("/extras/tokenize/count", dependencies=auth, openapi_extra=_schema(TokenizeRequest))
    async def tokenize_count(body: TokenizeRequest = Depends(body_of(TokenizeRequest))):
        return {"count": len(llama.tokenize(body.input.encode("utf-8"), add_bos=body.add_bos,
                                            special=body.special))}

    @app.post("/extras/detokenize", dependencies=auth, openapi_extra=_schema(DetokenizeRequest))
    async def detokenize(body: DetokenizeRequest = Depends(body_of(DetokenizeRequest))):
        n_vocab = llama.n_vocab()
        bad = [t for t in body.tokens if not 0 <= t < n_vocab]
        if bad:
            raise APIError(400, f"token ids must lie in [0, {n_vocab}); got {bad[:5]}", param="tokens")
        return {"text": llama.detokenize(body.tokens).decode("utf-8", errors="replace")}

    return app


def _schema(model) -> Dict[str, Any]:
    """OpenAPI request body for a route that parses its body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _job_pair(create, kw: Dict[str, Any], grammar):
    """The plain and the streaming job of one request: create(**kw) with stream False / True, the
    request's grammar, and the queue job's logits processor (which stops it on disconnect)."""
    def job_for(stream: bool):
        def work(job):
            return create(**{**kw, "stream": stream}, grammar=grammar, logits_processor=job.logits_processor)
        return work

    return job_for(False), job_for(True)


def _grammar(text: Optional[str]):
    if not text:
        return None
    from ..llama_grammar import LlamaGrammar

    try:
        return LlamaGrammar.from_string(text, verbose=False)
    except ValueError as e:
        raise APIError(400, f"grammar: {e}", param="grammar") from None
