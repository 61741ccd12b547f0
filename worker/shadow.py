"""`sous shadow-report`: how sous's dry-run answers compare with what the nightly job (or sous
itself, later) wrote on the same rows.

Which of the app's columns hold those answers is SHADOW_COMPARE_COLUMNS (field=column pairs).
A row is compared when it is final (resolved, rejected, failed) or one of those columns holds an
answer; each field is compared where either side has a value: names and units case-blind, numbers
within 1e-6. The report gives the agreement per field, per row, and a sample of disagreements.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core import shadow_store
from core.errors import ConfigError

FIELDS = ("status", "canonical_name", "resolved_unit", "resolved_quantity")
FINAL = ("resolved", "rejected", "failed")


def compare_columns(setting: str) -> dict[str, str]:
    """'canonical_name=matched_name,resolved_unit=unit' -> {field: column}; status is always
    compared with the row's own status."""
    mapping = {"status": "status"}
    for part in (p.strip() for p in setting.split(",") if p.strip()):
        field, sep, column = (x.strip() for x in part.partition("="))
        if not sep or field not in FIELDS or not column:
            raise ConfigError(
                [f"SHADOW_COMPARE_COLUMNS: {part!r}: expected field=column, field one of {FIELDS}"]
            )
        mapping[field] = column
    return mapping


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return abs(float(a) - float(b)) < 1e-6
    except (TypeError, ValueError):
        return str(a).strip().lower() == str(b).strip().lower()


def shadow_report(
    conn: sa.Connection,
    *,
    max_disagreements: int = 50,
    columns: str = "canonical_name=canonical_name,resolved_unit=resolved_unit",
) -> dict[str, Any]:
    mapping = compare_columns(columns)
    rows = shadow_store.report_rows(conn)
    if rows:
        missing = sorted(c for c in mapping.values() if c not in rows[0]["live"])
        if missing:
            raise ConfigError(
                [f"SHADOW_COMPARE_COLUMNS: no column {', '.join(missing)} in ingredient_match_queue"]
            )
    per_field = {f: {"compared": 0, "agree": 0} for f in mapping}
    compared = agree = waiting = 0
    disagreements: list[dict[str, Any]] = []
    for r in rows:
        live = r["live"]
        has_answer = any(live.get(c) is not None for f, c in mapping.items() if f != "status")
        if live.get("status") not in FINAL and not has_answer:
            waiting += 1
            continue
        compared += 1
        diffs = {}
        for field, column in mapping.items():
            ours, theirs = r[f"shadow_{field}"], live.get(column)
            if ours is None and theirs is None:
                continue
            per_field[field]["compared"] += 1
            if _same(ours, theirs):
                per_field[field]["agree"] += 1
            else:
                diffs[field] = {"sous": ours, "app": theirs, "column": column}
        if not diffs:
            agree += 1
        else:
            disagreements.append({"queue_id": r["queue_id"], "name": r["cleaned_name"], "fields": diffs})
    return {
        "compared": compared,
        "agree": agree,
        "agreement_pct": _pct(agree, compared),
        "fields": {f: {**v, "agreement_pct": _pct(v["agree"], v["compared"])} for f, v in per_field.items()},
        "columns": mapping,
        "not_final_yet": waiting,
        "models": sorted({r["shadow_model"] for r in rows if r["shadow_model"]}),
        "disagreements": disagreements[:max_disagreements],
        "disagreements_total": len(disagreements),
    }


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None
