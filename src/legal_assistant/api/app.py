"""The FastAPI application: lifespan (start-up and the seed's shutdown lines), error
handlers, routers, and the static web UI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from legal_assistant import __version__
from legal_assistant.accounts.policy import Admin
from legal_assistant.accounts.service import Accounts
from legal_assistant.api.auth_gate import AuthGate, refusal
from legal_assistant.api.deps import ApiKey, State, request_language
from legal_assistant.api.guard import BrowserGuard
from legal_assistant.api.metrics import Metrics
from legal_assistant.api.openapi import install_openapi
from legal_assistant.api.routes import (
    anthropic_gateway,
    audit,
    auth,
    chat,
    conversations,
    embeddings,
    engines,
    keys,
    members,
    models,
    ollama_api,
    ollama_manage,
    openai_gateway,
    users,
)
from legal_assistant.api.routes import briefs as brief_routes
from legal_assistant.api.routes import documents as document_routes
from legal_assistant.api.routes import dossiers as dossier_routes
from legal_assistant.api.routes import judgments as judgment_routes
from legal_assistant.api.routes import settings as settings_routes
from legal_assistant.api.routes import verify as verify_routes
from legal_assistant.api.state import AppState
from legal_assistant.chat.grounding import Grounder
from legal_assistant.chat.service import ChatService
from legal_assistant.config import Settings
from legal_assistant.documents.ingest import IngestionService
from legal_assistant.engine_http import engine_client
from legal_assistant.errors import LegalAssistantError
from legal_assistant.logging_setup import setup_logging
from legal_assistant.runtime import service as mlx_service
from legal_assistant.runtime.admission import Admission
from legal_assistant.runtime.supervisor import Supervisor
from legal_assistant.runtime.warmup import Warmer
from legal_assistant.store import Database, DatabaseError, DataDirLock

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def error_body(err: LegalAssistantError, language: str) -> dict[str, Any]:
    body = err.to_dict("en" if language == "en" else "fr")
    body["type"] = err.code
    return {"error": body}


def create_app(settings: Settings | None = None) -> FastAPI:
    log = setup_logging()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or Settings()
        log.info("Legal Assistant API - Starting...")
        lock: DataDirLock | None = None
        if cfg.surrealdb_url is None or cfg.surrealdb_url.startswith(("surrealkv", "file")):
            # The embedded engine has no lock of its own: two backends would corrupt it.
            lock = DataDirLock(cfg.data_dir)
            lock.acquire()
        db = Database()
        try:
            await db.connect(
                cfg.resolved_surrealdb_url,
                cfg.surrealdb_namespace,
                cfg.surrealdb_database,
                cfg.surrealdb_user,
                cfg.surrealdb_password,
            )
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        log.info("SurrealDB connected (%s)", cfg.resolved_surrealdb_url)
        supervisor = Supervisor(cfg)
        reaped = supervisor.reap_orphans()
        for entry in reaped:
            log.warning(
                "Ended orphaned engine pid %s (%s) left by a previous run", entry.pid, entry.model
            )
        mlx_service.set_supervisor(supervisor)
        metrics = Metrics(supervisor)
        # Fair across users, sized to each engine's real parallelism (runtime/admission.py).
        admission = Admission.from_settings(
            cfg, supervisor.parallelism, on_wait=metrics.admission_waited
        )
        metrics.watch_admission(admission)
        # Dossiers: resumes the ingestion jobs a previous run left unfinished.
        ingestion = await IngestionService.open(cfg, db, supervisor)
        metrics.watch_embedding(ingestion.library.embedder.queue)
        grounder = Grounder(cfg, db, ingestion.library)
        chat_service = ChatService(cfg, supervisor, db, admission=admission, grounder=grounder)
        metrics.start()
        # One pooled client for the gateway; no read timeout (an answer streams as long as
        # it streams), a short connect timeout (a dead engine fails fast).
        gateway_http = engine_client(timeout=httpx.Timeout(None, connect=5.0))
        accounts = Accounts(cfg, db)
        await accounts.start()
        app.state.la = AppState(
            cfg,
            supervisor,
            db,
            chat_service,
            lock,
            admission,
            metrics,
            gateway_http,
            ingestion=ingestion,
            accounts=accounts,
        )
        # Preloaded models start in the background: the API answers meanwhile.
        supervisor.preload(cfg.preload)
        # The default model is started and its system prompt prefilled in the background
        # (docs/first-answer.md), so the first answer does not wait for a cold engine.
        warmer = app.state.warmer = Warmer(supervisor)
        warmer.start_default(cfg)
        log.info("Legal Assistant API - Ready on http://%s:%s", cfg.host, cfg.port)
        try:
            yield
        finally:
            log.info("Legal Assistant API - Shutting down...")
            accounts.close()
            await metrics.stop()
            await gateway_http.aclose()
            await ingestion.aclose()  # before the engines: its jobs hold embedding leases
            await warmer.aclose()
            stopped = await supervisor.shutdown()
            if any(e.kind == "mlx" for e in stopped):
                log.info("MLX server stopped")
            mlx_service.set_supervisor(None)
            await chat_service.aclose()
            await db.close()
            log.info("SurrealDB disconnected")
            if lock is not None:
                lock.release()
            log.info("Goodbye!")

    app = FastAPI(
        title="Legal Assistant API",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
    )

    app.add_middleware(AuthGate)  # inside BrowserGuard: the Host/Origin checks come first
    app.add_middleware(BrowserGuard)
    install_openapi(app)

    @app.exception_handler(LegalAssistantError)
    async def on_error(request: Request, exc: LegalAssistantError) -> Response:
        # In the protocol of the path: a refusal by a dependency (the access policy) on
        # /v1 or /ollama reaches an OpenAI, Anthropic or Ollama client in its own shape.
        return refusal(request.url.path, exc, request_language(request))

    @app.exception_handler(DatabaseError)
    async def on_storage_error(request: Request, exc: DatabaseError) -> JSONResponse:
        # Disk full, unwritable data directory: a classified 503, not a bare 500.
        err = exc.user_error()
        return JSONResponse(error_body(err, request_language(request)), status_code=err.http_status)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug still answers a classified JSON error (OpenAI's shape on the gateway),
        # never a bare "Internal Server Error" page; the traceback goes to the log.
        log.error("Unexpected error on %s", request.url.path, exc_info=exc)
        err = LegalAssistantError("internal_error", type(exc).__name__)
        if request.url.path.startswith("/v1/"):
            return openai_gateway.openai_error(err)
        return JSONResponse(error_body(err, request_language(request)), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
            for e in exc.errors()[:5]
        )
        err = LegalAssistantError(
            "bad_request",
            problems[:500],
            message_fr=f"❌ Requête invalide : {problems[:300]}",
            message_en=f"❌ Invalid request: {problems[:300]}",
        )
        return JSONResponse(error_body(err, request_language(request)), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown paths, wrong methods...: the same error body as every other refusal.
        code = {401: "unauthorized", 404: "not_found"}.get(exc.status_code, "bad_request")
        err = LegalAssistantError(code, str(exc.detail)[:300], http_status=exc.status_code)
        return JSONResponse(
            error_body(err, request_language(request)),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # Admins only in accounts mode: model names, queue waits per user.
    @app.get("/metrics", dependencies=[ApiKey, Admin], response_class=PlainTextResponse)
    async def metrics_endpoint(state: State) -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for module in (
        chat,
        settings_routes,
        engines,
        models,
        conversations,
        dossier_routes,
        document_routes,
        judgment_routes,
        verify_routes,
        brief_routes,
        openai_gateway,
        embeddings,
        anthropic_gateway,
        ollama_api,
        ollama_manage,
        auth,
        users,
        members,
        keys,
        audit,
    ):
        app.include_router(module.router)
    if (WEB_DIR / "index.html").is_file():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
