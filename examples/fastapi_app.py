"""A FastAPI service answering "who spends the most?" from Helicone user metrics.

One ``AsyncHeliconeUsers`` is created in the app's lifespan (so its connection pool lives as long
as the app) and handed to endpoints with ``Depends``. SDK errors become HTTP answers: a bad filter
is the caller's fault (400), a failing Helicone is a bad gateway (502), a slow one a gateway
timeout (504).

Run it (``pip install 'helicone-users[examples]'`` installs FastAPI and uvicorn)::

    export HELICONE_API_KEY=sk-helicone-...
    uvicorn examples.fastapi_app:app
    curl 'localhost:8000/top-users?filter=model%20%3D%20%22gpt-4o%22&limit=5'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request

from helicone_users import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncHeliconeUsers,
    FilterError,
    HeliconeAPIError,
)


def create_app(**client_options: Any) -> FastAPI:
    """The app; ``client_options`` go to ``AsyncHeliconeUsers`` (default: the environment)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncHeliconeUsers(**client_options) as client:
            app.state.helicone = client
            yield

    app = FastAPI(title="Top Helicone users", lifespan=lifespan)
    app.get("/top-users")(top_users)
    return app


def get_client(request: Request) -> AsyncHeliconeUsers:
    """The app's shared client (a FastAPI dependency)."""
    client: AsyncHeliconeUsers = request.app.state.helicone
    return client


async def top_users(
    client: Annotated[AsyncHeliconeUsers, Depends(get_client)],
    filter: Annotated[str, Query(description='a filter, e.g. model = "gpt-4o"')] = "all",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """The ``limit`` users with the highest cost among those matching ``filter``."""
    try:
        page = await client.users.metrics(filter, sort=("cost", "desc"), limit=limit)
    except FilterError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    except APITimeoutError as exc:
        raise HTTPException(status_code=504, detail="Helicone did not answer in time") from exc
    except (APIStatusError, HeliconeAPIError, APIConnectionError) as exc:
        raise HTTPException(status_code=502, detail=f"Helicone failed: {exc}") from exc
    return {
        "matching_users": page.count,
        "users": [
            {"user_id": u.user_id, "cost": u.cost, "requests": u.total_requests}
            for u in page.users
        ],
    }


app = create_app()
