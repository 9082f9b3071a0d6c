"""The aiohttp application: route groups, the request guard, and the Helicone handlers."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import web

from helicone_users._config import LOGGER_NAME, WEAVE_MAX_RANGE_DAYS
from helicone_users.testing._auth import TOO_MANY, RateLimiter, check_auth
from helicone_users.testing._faults import FaultInjector, FaultPlan, with_faults
from helicone_users.testing._queries import LIMIT_ERROR, Context, QueryError
from helicone_users.testing._queries import metrics as run_metrics
from helicone_users.testing._queries import overview as run_overview
from helicone_users.testing._queries import user_query as run_user_query
from helicone_users.testing._schema import (
    METRICS_BODY,
    OVERVIEW_BODY,
    Schema,
    user_query_body,
    validate,
)
from helicone_users.testing._sql import FilterCompileError
from helicone_users.testing._store import Store
from helicone_users.testing._weave import add_weave_routes
from helicone_users.testing._weave_stats import ModelPrice

logger = logging.getLogger(f"{LOGGER_NAME}.emulator")

Body = Mapping[str, Any]
Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]
RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SERVER_ERROR_BODY: Final = {"message": "Internal Server Error", "details": "Internal Server Error"}
OVERVIEW_ERROR: Final = "No request count found"


class EmulatorState:
    """Everything the handlers share: the store, the key, quirks, faults and the rate limit.

    Route groups (``add_helicone_routes``, the Weave ``add_weave_routes``) read it; run SQL with
    ``await state.store.run(lambda cursor: ...)``, which works in a thread off the event loop.
    """

    def __init__(
        self,
        *,
        store: Store,
        api_key: str,
        quirks: frozenset[str],
        faults: FaultPlan | None,
        rate_limit: tuple[int, float] | None,
        seed: int,
        rate_limit_window: str = "fixed",
        weave_max_range_days: int | None = WEAVE_MAX_RANGE_DAYS,
        weave_prices: Mapping[str, ModelPrice] | None = None,
    ) -> None:
        self.store = store
        #: The longest /calls/stats range in days, as on the hosted server; None lifts it.
        self.weave_max_range_days = weave_max_range_days
        #: The /calls/stats price table (model -> ModelPrice); None uses the synthetic models'.
        self.weave_prices = weave_prices
        self.api_key = api_key
        self.quirks = quirks
        self.context = Context(quirks, salt=seed)
        self.faults = FaultInjector(faults)
        self.limiter = RateLimiter(*rate_limit, mode=rate_limit_window) if rate_limit else None
        self.logger = logger
        self.seen_requests = 0

    def has(self, quirk: str) -> bool:
        """Whether ``quirk`` is on."""
        return quirk in self.quirks


STATE_KEY: Final = web.AppKey("helicone_users_emulator_state", EmulatorState)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer (``NaN`` is refused so every body is valid JSON)."""
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return web.Response(
        text=text, status=status, content_type="application/json", headers=dict(headers or {})
    )


def envelope_error(message: str, status: int = 400) -> web.Response:
    """The tsoa ``{data: null, error}`` envelope."""
    return json_response({"data": None, "error": message}, status)


async def _read_json(request: web.Request) -> tuple[Any, web.Response | None]:
    raw = await request.read()
    try:
        return json.loads(raw or b"null"), None
    except (ValueError, RecursionError) as exc:
        return None, envelope_error(f"request body is not valid JSON: {exc}")


def guard(state: EmulatorState, schema: Callable[[], Schema], handler: Handler) -> RouteHandler:
    """Wrap a JSON handler: faults, auth, rate limit, body parsing, 422 validation, no 500s."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        state.seen_requests += 1
        return await with_faults(request, state.faults, lambda: _safe_answer(request))

    async def _safe_answer(request: web.Request) -> web.StreamResponse:
        try:
            return await _answer(request, state, schema, handler)
        except ConnectionError:  # the client left mid-request: nobody will read the answer
            logger.debug("client left during %s", request.path)
            return web.Response(status=499, reason="Client Closed Request")
        except Exception as exc:  # the emulator never answers 500 by accident
            logger.exception("emulator failed on %s", request.path)
            return envelope_error(f"emulator could not answer: {type(exc).__name__}")

    return guarded


async def _answer(
    request: web.Request, state: EmulatorState, schema: Callable[[], Schema], handler: Handler
) -> web.StreamResponse:
    denied = check_auth(request.headers, state.api_key, raw_key=state.has("raw_key_auth"))
    if denied is not None:
        return json_response(denied, 401)
    limit_headers: dict[str, str] = {}
    if state.limiter is not None:
        allowed, limit_headers = state.limiter.hit()
        if not allowed:
            return json_response(dict(TOO_MANY), 429, limit_headers)
    body, problem = await _read_json(request)
    if problem is not None:
        return problem
    details = validate(body, schema())
    if details:
        return json_response({"message": "Validation Failed", "details": details}, 422)
    try:
        response = await handler(request, body)
    except Exception as exc:  # the emulator never answers 500 by accident
        logger.exception("emulator handler failed on %s", request.path)
        response = envelope_error(f"emulator could not answer: {type(exc).__name__}: {exc}")
    response.headers.update(limit_headers)
    return response


def _filter_failure(exc: FilterCompileError, state: EmulatorState) -> web.Response | None:
    if exc.kind == "empty" and state.has("empty_condition_500"):
        return json_response(dict(SERVER_ERROR_BODY), 500)
    return None


def add_helicone_routes(app: web.Application, state: EmulatorState) -> None:
    """The three Helicone user endpoints."""

    async def metrics(request: web.Request, body: Body) -> web.StreamResponse:
        try:
            data = await state.store.run(lambda cur: run_metrics(cur, body, state.context))
        except FilterCompileError as exc:
            return _filter_failure(exc, state) or envelope_error(str(exc))
        except QueryError as exc:
            if str(exc) == LIMIT_ERROR:
                return json_response({"error": LIMIT_ERROR, "data": None}, 400)
            return envelope_error(str(exc))
        except Exception as exc:
            return envelope_error(_database_text(exc))
        return json_response({"data": data, "error": None})

    async def overview(request: web.Request, body: Body) -> web.StreamResponse:
        try:
            data = await state.store.run(lambda cur: run_overview(cur, body, state.context))
        except FilterCompileError as exc:
            failure = _filter_failure(exc, state)
            return failure or _overview_error(str(exc), state)
        except Exception as exc:
            return _overview_error(_database_text(exc), state)
        return json_response({"data": data, "error": None})

    async def users(request: web.Request, body: Body) -> web.StreamResponse:
        try:
            data = await state.store.run(lambda cur: run_user_query(cur, body, state.context))
        except Exception as exc:
            text = _database_text(exc)
            if state.has("errors_as_200"):
                as_json = json.dumps({"code": "0", "type": type(exc).__name__, "message": text})
                return envelope_error(as_json, 200)
            return envelope_error(text)
        return json_response({"data": data, "error": None})

    user_schema = (
        (lambda: user_query_body(None))
        if state.has("user_query_arbitrary_100")
        else (lambda: user_query_body(100))
    )
    app.router.add_post("/v1/user/metrics/query", guard(state, lambda: METRICS_BODY, metrics))
    app.router.add_post(
        "/v1/user/metrics-overview/query", guard(state, lambda: OVERVIEW_BODY, overview)
    )
    app.router.add_post("/v1/user/query", guard(state, user_schema, users))


def _overview_error(text: str, state: EmulatorState) -> web.Response:
    if state.has("errors_as_200"):
        return envelope_error(OVERVIEW_ERROR, 200)
    return envelope_error(text)


def _database_text(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"query failed: {text}"


def build_app(state: EmulatorState) -> web.Application:
    """The emulator's application: every route group registered on one app."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    add_helicone_routes(app, state)
    add_weave_routes(app, state)
    return app
