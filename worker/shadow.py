"""`sous shadow-report`: how dry-run answers compare with how rows were finally resolved."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core import shadow_store


def shadow_report(conn: sa.Connection, *, max_disagreements: int = 50) -> dict[str, Any]:
    rows = shadow_store.report_rows(conn)
    agree = sum(1 for r in rows if r["agree"])
    disagreements = [
        {
            "queue_id": r["queue_id"],
            "name": r["cleaned_name"],
            "shadow": {
                "status": r["shadow_status"],
                "canonical_name": r["shadow_canonical"],
                "unit": r["shadow_unit"],
                "provider": r["shadow_provider"],
            },
            "live": {
                "status": r["live_status"],
                "canonical_name": r["live_canonical"],
                "unit": r["live_unit"],
                "provider": r["live_provider"],
            },
        }
        for r in rows
        if not r["agree"]
    ]
    return {
        "compared": len(rows),
        "agree": agree,
        "agreement_pct": round(100.0 * agree / len(rows), 2) if rows else None,
        "not_final_yet": shadow_store.pending_count(conn),
        "models": sorted({r["shadow_model"] for r in rows if r["shadow_model"]}),
        "disagreements": disagreements[:max_disagreements],
        "disagreements_total": len(disagreements),
    }
