"""Plans and their limits: monthly extractions and uploads per rolling hour.

free 5/month and 10/hour, premium 50 and 20, enterprise unlimited and 50. A profile's
`plan_limits` overrides either number with the keys `ocr_jobs` (extractions per month, the
existing app's name) and `uploads_per_hour`; null or negative means unlimited, a value that is
not a number is ignored. A user without a profile row is on the free plan. The app's own key
`monthly_uploads` (accepted uploads per calendar month, cached ones included) keeps working
beside them: set, it is checked too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core import db

PLANS: dict[str, tuple[int | None, int | None]] = {
    "free": (5, 10),
    "premium": (50, 20),
    "enterprise": (None, 50),
}
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Limits:
    plan: str
    monthly: int | None  # None: unlimited
    hourly: int | None  # None: unlimited
    monthly_uploads: int | None = None  # the app's `monthly_uploads` key; None: no such limit


@dataclass(frozen=True)
class QuotaState:
    limits: Limits
    monthly_used: int
    hourly_used: int
    month_resets_at: datetime
    hour_resets_at: datetime | None  # when the oldest upload of the window ages out
    monthly_uploads_used: int = 0

    @property
    def monthly_uploads_exhausted(self) -> bool:
        cap = self.limits.monthly_uploads
        return cap is not None and self.monthly_uploads_used >= cap

    @property
    def monthly_exhausted(self) -> bool:
        return self.limits.monthly is not None and self.monthly_used >= self.limits.monthly

    @property
    def hourly_exhausted(self) -> bool:
        return self.limits.hourly is not None and self.hourly_used >= self.limits.hourly

    def as_json(self) -> dict[str, Any]:
        monthly, hourly = self.limits.monthly, self.limits.hourly
        out = self._as_json(monthly, hourly)
        cap = self.limits.monthly_uploads
        if cap is not None:
            used = self.monthly_uploads_used
            out["monthlyUploads"] = {"limit": cap, "used": used, "remaining": max(cap - used, 0)}
        return out

    def _as_json(self, monthly: int | None, hourly: int | None) -> dict[str, Any]:
        return {
            "plan": self.limits.plan,
            "monthly": {
                "limit": monthly,
                "used": self.monthly_used,
                "remaining": None if monthly is None else max(monthly - self.monthly_used, 0),
                "resetAt": self.month_resets_at.isoformat(),
            },
            "hourly": {
                "limit": hourly,
                "used": self.hourly_used,
                "remaining": None if hourly is None else max(hourly - self.hourly_used, 0),
                "resetAt": self.hour_resets_at.isoformat() if self.hour_resets_at else None,
            },
        }


def _int_or_none(value: Any, default: int | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return None if number < 0 else number


def limits_for(plan: str | None, plan_limits: dict[str, Any] | None) -> Limits:
    plan = plan if plan in PLANS else "free"
    monthly, hourly = PLANS[plan]
    overrides = plan_limits or {}
    if "ocr_jobs" in overrides:
        monthly = _int_or_none(overrides["ocr_jobs"], monthly)
    if "uploads_per_hour" in overrides:
        hourly = _int_or_none(overrides["uploads_per_hour"], hourly)
    uploads = _int_or_none(overrides["monthly_uploads"], None) if "monthly_uploads" in overrides else None
    return Limits(plan, monthly, hourly, uploads)


def next_month(now: datetime) -> datetime:
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


def quota_state(conn: sa.Connection, user_id: uuid.UUID) -> QuotaState:
    """The user's limits and usage, read in the caller's transaction (which holds the user lock
    when it is about to insert)."""
    row = db.fetch_one(conn, "menu_quota_usage", {"user_id": str(user_id)})
    assert row is not None
    limits = limits_for(row["plan"], row["plan_limits"])
    now: datetime = row["now"]
    oldest: datetime | None = row["oldest_upload_in_hour"]
    return QuotaState(
        limits=limits,
        monthly_used=int(row["monthly_used"]),
        hourly_used=int(row["hourly_used"]),
        month_resets_at=next_month(now),
        hour_resets_at=(oldest + HOUR) if oldest else None,
        monthly_uploads_used=int(row.get("monthly_uploads_used") or 0),
    )


def set_plan(conn: sa.Connection, user_id: uuid.UUID, plan: str) -> None:
    """Puts the user on `plan` (creating their profile if needed)."""
    db.execute(conn, "menu_set_plan", {"user_id": str(user_id), "plan": plan})
