"""Ingredient routes: synchronous standardization and queue ingest."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.errors import ApiError, responses
from api.state import AppState, Service, State, UserOrService
from core import db, queue
from model.ingredients import IngredientQuery, IngredientResolver

router = APIRouter(prefix="/api/ingredients", tags=["ingredients"])
MAX_STANDARDIZE = 500
MAX_QUEUE_ROWS = 5000
_resolver_lock = threading.Lock()


def _storable(text: str) -> str:
    """Postgres text holds neither NUL characters nor lone UTF-16 surrogates."""
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_storable)]


class StandardizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ingredients: list[Annotated[Text, Field(max_length=500)]] = Field(
        min_length=1, max_length=MAX_STANDARDIZE
    )


class StandardizeResult(BaseModel):
    input: str
    status: Literal["resolved", "rejected", "failed"]
    canonical_name: str | None
    quantity: float | None
    unit: str | None
    confidence: float
    provider: str
    reason: str | None


class StandardizeResponse(BaseModel):
    results: list[StandardizeResult]


class QueueRowIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    raw_name: Text = Field(min_length=1, max_length=1000)
    cleaned_name: Text | None = Field(default=None, max_length=1000)
    source: Literal["scraper", "recipe"] = "scraper"
    raw_unit: Text | None = Field(default=None, max_length=100)
    recipe_ingredient_id: Text | int | None = None
    needs_ingredient_review: bool = True
    needs_unit_review: bool = False


class QueueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[QueueRowIn] = Field(min_length=1, max_length=MAX_QUEUE_ROWS)


class QueueResponse(BaseModel):
    ids: list[int | str]  # bigint ids as numbers, uuid ids as strings (the app's table decides)


class QueueRowOut(BaseModel):
    id: int | str
    status: str
    source: str
    raw_name: str | None
    cleaned_name: str | None
    raw_unit: str | None
    canonical_name: str | None
    resolved_unit: str | None
    resolved_quantity: float | None
    confidence: float | None
    provider: str | None
    last_error: str | None
    attempt_count: int
    created_at: datetime
    resolved_at: datetime | None


def _resolver(state: AppState) -> IngredientResolver:
    """The ingredient resolver of this process, built on first use."""
    with _resolver_lock:
        if state.resolver is None:
            state.resolver = IngredientResolver.from_settings(state.settings)
        return state.resolver


@router.post("/standardize", response_model=StandardizeResponse, responses=responses(400, 401, 413, 429, 503))
def standardize(body: StandardizeRequest, state: State, caller: UserOrService) -> StandardizeResponse:
    """Canonical name, quantity and unit of each ingredient line, in input order. A user may
    send `API_STANDARDIZE_ITEMS_PER_HOUR` items per clock hour (429 `RATE_LIMIT_EXCEEDED` with
    `Retry-After`); the service key is not limited."""
    if caller.principal is not None:
        _take_standardize_budget(state, str(caller.principal.user_id), len(body.ingredients))

    answers = _resolver(state).resolve([IngredientQuery.of(text) for text in body.ingredients])
    return StandardizeResponse(
        results=[
            StandardizeResult(
                input=text,
                status=a.status,
                canonical_name=a.canonical_name,
                quantity=None if a.quantity is None else float(a.quantity),
                unit=a.unit,
                confidence=float(a.confidence),
                provider=a.provider,
                reason=a.reason,
            )
            for text, a in zip(body.ingredients, answers, strict=True)
        ]
    )


def _take_standardize_budget(state: AppState, user_id: str, items: int) -> None:
    """Behind /standardize stand the paid fallbacks: each user's items per hour are capped."""
    budget = state.limits.standardize
    wait = budget.take(user_id, items)
    if wait is not None:
        reset_at = datetime.now(UTC) + timedelta(seconds=wait)
        raise ApiError(
            429,
            "RATE_LIMIT_EXCEEDED",
            f"at most {budget.per_hour} ingredients per hour may be standardized; this request has {items}",
            {"Retry-After": str(wait)},
            limit="standardize_items_per_hour",
            resetAt=reset_at.isoformat(timespec="seconds"),
        )


@router.post("/queue", response_model=QueueResponse, responses=responses(400, 401, 413, 503))
def enqueue_rows(body: QueueRequest, state: State, caller: Service) -> QueueResponse:
    """Adds rows to ingredient_match_queue (at most 5,000 per call); returns their ids in order."""
    rows = [
        row.model_dump()
        | {
            "recipe_ingredient_id": None
            if row.recipe_ingredient_id is None
            else str(row.recipe_ingredient_id)
        }
        for row in body.rows
    ]
    with db.transaction(state.engine) as conn:
        ids = queue.insert_rows(conn, rows)
    return QueueResponse(ids=ids)


@router.get("/queue/{row_id}", response_model=QueueRowOut, responses=responses(400, 401, 404, 503))
def get_row(
    row_id: Annotated[str, Path(min_length=1, max_length=64)], state: State, caller: Service
) -> QueueRowOut:
    with db.transaction(state.engine) as conn:
        row = queue.get_row(conn, row_id)
    if row is None:
        raise ApiError(404, "ROW_NOT_FOUND", f"no queue row {row_id}")
    return QueueRowOut.model_validate(row)
