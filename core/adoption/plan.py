"""Compares the database (a Catalog) with what sous needs (spec) and lists the steps that close
the gap: create what is absent, add what is missing, never retype or drop what is there. Each
step carries its undo, so the downgrade gives the app its schema back exactly. An existing table
sous cannot work with is a problem: one line naming the table, the column, what is there and
what is needed; a plan with problems is never applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from core.adoption import functions as fn
from core.adoption import supabase
from core.adoption.catalog import Catalog, TableInfo
from core.adoption.ddl import Step, acl_restore_sql, drop_sql, ident, literal
from core.adoption.spec import (
    INDEXES,
    INTERNAL_TABLES,
    LOG_TABLE,
    LOG_TABLE_SQL,
    MENU_JOBS,
    PLANS_VIEW,
    PROFILES,
    QUEUE,
    TEXT,
    TRIGGERS,
    UNIQUE_INDEXES,
    Function,
    Table,
)

KIND_NAMES = {"v": "view", "m": "materialized view", "i": "index", "S": "sequence", "f": "foreign table"}


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)  # tables, views and functions this plan creates
    queue_id_type: str = "bigint"
    profiles_key: str = "user_id"


class Planner:
    def __init__(self, conn: sa.Connection, catalog: Catalog) -> None:
        self.conn = conn
        self.catalog = catalog
        self.plan = Plan()
        self.infos: dict[str, TableInfo] = {}  # final name -> what exists (after a rename)
        self.renamed_ocr_jobs = False
        self.after_columns: list[Step] = []  # views over tables whose columns are still being added

    def step(self, action: str, summary: str, sql: str, undo: str = "") -> None:
        self.plan.steps.append(Step(action, summary, sql, undo))

    def problem(self, line: str) -> None:
        self.plan.problems.append(line)

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        # The raw driver cursor without parameters: an app's CHECK expression may hold a '%'.
        cursor: Any = self.conn.connection.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _scalar(self, sql: str) -> object:
        rows = self._rows(sql)
        return rows[0][0] if rows else None

    # ------------------------------------------------------------------ tables and columns

    def table(self, spec: Table, current_name: str | None = None) -> None:
        name = current_name or spec.name
        info = self.catalog.table(name)
        if info is None:
            kind = self.catalog.relations.get(name)
            if kind is not None:
                self.problem(f"{name}: is a {KIND_NAMES.get(kind, kind)}; needed: a table sous can use")
                return
            self.create_table(spec)
            return
        self.infos[spec.name] = info
        self.adopt_columns(spec, info, name)

    def _decl(self, decl: str) -> str:
        return decl.replace("{queue_id}", self.plan.queue_id_type)

    def create_table(self, spec: Table) -> None:
        parts = [spec.create_key] if spec.create_key else []
        parts += [f"{c.name} {self._decl(c.decl)}" for c in spec.columns if c.name != spec.key]
        parts += list(spec.create_extra)
        body = ",\n  ".join(parts)
        self.step(
            "create",
            f"create table {spec.name}",
            f"CREATE TABLE {spec.name} (\n  {body}\n)",
            f"DROP TABLE {spec.name}",
        )
        self.plan.created.add(spec.name)

    def adopt_columns(self, spec: Table, info: TableInfo, name: str) -> None:
        for col in spec.columns:
            have = info.columns.get(col.name)
            if have is not None:
                if col.accepts and have.base_type not in col.accepts:
                    needed = ", ".join(sorted(col.accepts))
                    self.problem(f"{name}.{col.name}: is {have.data_type}; needed: one of {needed}")
                continue
            if not col.adopt:
                if col.name == spec.key:
                    self.problem(f"{name}.{col.name}: missing; needed: the table's key column")
                continue
            decl = self._decl(col.decl)
            self.step(
                "add",
                f"add column {spec.name}.{col.name} {decl}",
                f"ALTER TABLE {ident(spec.name)} ADD COLUMN {col.name} {decl}",
                f"ALTER TABLE {ident(spec.name)} DROP COLUMN {col.name}",
            )
        if spec.statuses and "status" in info.columns:
            self.check_statuses(spec, info, name)
        for cname, have_col in info.columns.items():
            known = any(c.name == cname for c in spec.columns) or cname == spec.key
            extra = have_col.not_null and have_col.default is None and not have_col.identity
            if extra and not known and not spec.internal:
                self.plan.notes.append(
                    f"{name}.{cname} is NOT NULL without a default: rows sous inserts (API, sous enqueue) "
                    "will be refused until it has one"
                )

    def check_statuses(self, spec: Table, info: TableInfo, name: str) -> None:
        allowed = ", ".join(literal(s) for s in spec.statuses)
        needed = ", ".join(spec.statuses)
        bad = self._rows(
            f"SELECT status::text, count(*) FROM {ident(name)} "
            f"WHERE status IS NOT NULL AND status::text NOT IN ({allowed}) GROUP BY 1 ORDER BY 1"
        )
        for value, count in bad:
            self.problem(
                f"{name}.status: holds {literal(str(value))} in {count} rows; needed: one of {needed}"
            )
        column = info.columns["status"]
        checks = [c for c in info.constraints if c.kind == "c" and c.columns == ("status",) and c.check_expr]
        for check in checks:
            refused = [
                literal(value)
                for value in spec.statuses
                if not self._scalar(
                    f"SELECT ({check.check_expr}) IS NOT FALSE "
                    f"FROM (SELECT CAST({literal(value)} AS {column.data_type}) AS status) AS t"
                )
            ]
            if refused:
                self.problem(
                    f"{name}.status: constraint {check.name} ({check.definition}) refuses "
                    f"{', '.join(refused)}; needed: it allows {needed}"
                )
        if not checks and not bad and column.base_type in TEXT:
            cname = f"{spec.name}_sous_status_check"
            self.step(
                "add",
                f"add constraint {cname} CHECK (status IN ({needed}))",
                f"ALTER TABLE {ident(spec.name)} ADD CONSTRAINT {cname} CHECK (status IN ({allowed}))",
                f"ALTER TABLE {ident(spec.name)} DROP CONSTRAINT {cname}",
            )

    def unique_key(self, spec: Table, info: TableInfo, name: str) -> None:
        """Results are written back by id: the id must name one row."""
        if spec.key in info.unique_columns or spec.key not in info.columns:
            return
        dupes = self._scalar(f"SELECT count(*) - count(DISTINCT {spec.key}) FROM {ident(name)}")
        if dupes:
            self.problem(f"{name}.{spec.key}: {dupes} duplicate values; needed: unique ids")
            return
        index = f"{spec.name}_sous_{spec.key}_key"
        self.step(
            "create",
            f"create unique index {index} on {spec.name} ({spec.key})",
            f"CREATE UNIQUE INDEX {index} ON {ident(spec.name)} ({spec.key})",
            f"DROP INDEX {index}",
        )

    # ------------------------------------------------------------------ the app's tables

    def queue(self) -> None:
        info = self.catalog.table(QUEUE.name)
        self.table(QUEUE)
        if info is None or QUEUE.name not in self.infos:
            return
        id_col = info.columns.get("id")
        if id_col is None:
            return
        self.plan.queue_id_type = id_col.data_type
        if "processing_lease_expires_at" not in info.columns and "status" in info.columns:
            held = self._scalar(
                "SELECT count(*) FROM ingredient_match_queue WHERE status::text = 'processing'"
            )
            if held:
                self.plan.notes.append(
                    f"{held} ingredient_match_queue rows are 'processing' without a lease (claimed "
                    "before sous): sous leaves them to whoever holds them; set them back to 'pending' "
                    "to hand them over"
                )
        self.unique_key(QUEUE, info, QUEUE.name)
        if id_col.base_type == "uuid" and id_col.default is None:
            self.step(
                "add",
                "add default gen_random_uuid() to ingredient_match_queue.id (for rows sous inserts)",
                "ALTER TABLE ingredient_match_queue ALTER COLUMN id SET DEFAULT gen_random_uuid()",
                "ALTER TABLE ingredient_match_queue ALTER COLUMN id DROP DEFAULT",
            )
        elif id_col.default is None and not id_col.identity:
            self.plan.notes.append(
                "ingredient_match_queue.id has no default: rows sous inserts need one "
                "(the app's writers are unaffected)"
            )

    def profiles(self) -> None:
        info = self.catalog.table(PROFILES.name)
        self.table(PROFILES)
        if info is not None:
            keys = [k for k in ("user_id", "id") if k in info.columns and info.columns[k].base_type == "uuid"]

            def rank(key: str) -> tuple[bool, bool]:  # the user's id: references auth.users, or unique
                refs = any(
                    c.kind == "f" and c.columns == (key,) and c.ref_table == "auth.users"
                    for c in info.constraints
                )
                return (not refs, key not in info.unique_columns)

            keys.sort(key=rank)
            if not keys:
                self.problem(
                    "profiles: no uuid user column (user_id or id); needed: one keyed by the user's id"
                )
                return
            self.plan.profiles_key = keys[0]
        if PLANS_VIEW not in self.catalog.relations:
            self.step(
                "create",
                f"create view {PLANS_VIEW} (profiles keyed by {self.plan.profiles_key})",
                f"CREATE VIEW {PLANS_VIEW} AS SELECT {self.plan.profiles_key} AS user_id, plan, plan_limits "
                "FROM profiles",
                f"DROP VIEW {PLANS_VIEW}",
            )
            self.plan.created.add(PLANS_VIEW)

    def menu_jobs(self) -> None:
        menu, old = self.catalog.table(MENU_JOBS.name), self.catalog.table("ocr_jobs")
        if menu is None and old is not None:
            # The old app's table keeps its rows, constraints and policies under the new name;
            # a view under the old name keeps old readers working.
            self.step(
                "rename",
                "rename table ocr_jobs -> menu_extraction_jobs (rows, constraints, policies kept)",
                "ALTER TABLE ocr_jobs RENAME TO menu_extraction_jobs",
                "ALTER TABLE menu_extraction_jobs RENAME TO ocr_jobs",
            )
            self.infos[MENU_JOBS.name] = old
            self.renamed_ocr_jobs = True
            self.adopt_columns(MENU_JOBS, old, "ocr_jobs")
            self.unique_key(MENU_JOBS, old, "ocr_jobs")
            self.live_duplicates("ocr_jobs")
            invoker = " WITH (security_invoker = true)" if self.catalog.server_version >= 150000 else ""
            self.after_columns.append(
                Step(
                    "create",
                    "create view ocr_jobs over menu_extraction_jobs (old readers keep working)",
                    f"CREATE VIEW ocr_jobs{invoker} AS SELECT * FROM menu_extraction_jobs",
                    "DROP VIEW ocr_jobs",
                )
            )
            return
        self.table(MENU_JOBS)
        if menu is not None:
            self.unique_key(MENU_JOBS, menu, MENU_JOBS.name)
            self.live_duplicates(MENU_JOBS.name)

    def live_duplicates(self, name: str) -> None:
        info = self.catalog.table(name)
        if info is None or "menu_extraction_jobs_live_unique" in self.catalog.relations:
            return
        cols = ("user_id", "image_hash", "schema_version", "prompt_version")
        if not all(c in info.columns for c in (*cols, "status")):
            return
        dupes = self._scalar(
            f"SELECT count(*) FROM (SELECT 1 FROM {ident(name)} WHERE status IN ('queued', 'processing') "
            f"GROUP BY {', '.join(cols)} HAVING count(*) > 1) d"
        )
        if dupes:
            self.problem(
                f"{name}.status: {dupes} groups of live jobs share user, image and versions; "
                "needed: at most one queued or processing job per image"
            )

    # ------------------------------------------------------------------ indexes, triggers, functions

    def indexes(self) -> None:
        for index in INDEXES:
            if index.name in self.catalog.relations:
                continue
            unique = "UNIQUE " if index.name in UNIQUE_INDEXES else ""
            self.step(
                "create",
                f"create {unique.lower()}index {index.name} on {index.table}",
                f"CREATE {unique}INDEX {index.name} ON {index.table} {index.sql}",
                f"DROP INDEX {index.name}",
            )

    def triggers(self) -> None:
        for trigger in TRIGGERS:
            info = self.infos.get(trigger.table)
            if info is not None and trigger.name in info.triggers:
                continue
            if info is not None and "touch" in trigger.name and not self._has_updated_at(trigger.table, info):
                continue  # the app's table keeps no updated_at and sous does not add one
            self.step(
                "create",
                f"create trigger {trigger.name} on {trigger.table}",
                f"CREATE TRIGGER {trigger.name} {trigger.sql}",
                f"DROP TRIGGER {trigger.name} ON {trigger.table}",
            )

    @staticmethod
    def _has_updated_at(table: str, info: TableInfo) -> bool:
        adds = any(
            c.name == "updated_at" and c.adopt
            for t in (QUEUE, MENU_JOBS)
            if t.name == table
            for c in t.columns
        )
        return "updated_at" in info.columns or adds

    def functions(self, wanted: tuple[Function, ...]) -> None:
        for f in wanted:
            have = self.catalog.function(f.name, f.args)
            if have is None:
                self.step(
                    "create", f"create function {f.signature}", f.create_sql(replace=False), drop_sql(f)
                )
                self.plan.created.add(f.name)
            elif have.source.strip() == f.body.strip() and _same_result(have.result, f.result):
                continue
            elif _same_result(have.result, f.result) and have.full_args == f.args:
                self.step(
                    "replace",
                    f"replace function {f.signature} (the app's version comes back on downgrade)",
                    f.create_sql(),
                    have.definition,
                )
            else:
                self.step(
                    "replace",
                    f"replace function {f.signature} (was {have.name}({have.full_args}) "
                    f"returning {have.result})",
                    f"{drop_sql(f)};\n{f.create_sql(replace=False)}",
                    f"{drop_sql(f)};\n{have.definition};\n{acl_restore_sql(have)}",
                )
                self.plan.created.add(f.name)


def _same_result(a: str, b: str) -> bool:
    norm = [x.lower().replace("public.", "").strip() for x in (a, b)]
    return norm[0] == norm[1]


def build(conn: sa.Connection, catalog: Catalog) -> Plan:
    """The whole plan, in dependency order: the log, trigger functions, the queue and its RPCs,
    profiles, sous's own tables, menu jobs, indexes, triggers, then Supabase's grants."""
    planner = Planner(conn, catalog)
    if LOG_TABLE not in catalog.relations:
        planner.step(
            "create",
            f"create table {LOG_TABLE} (what sous changed, for the downgrade)",
            LOG_TABLE_SQL,
            f"DROP TABLE {LOG_TABLE}",
        )
        planner.plan.created.add(LOG_TABLE)
    planner.functions(fn.BEFORE_TABLES)
    planner.queue()
    planner.functions(fn.AFTER_QUEUE)
    planner.profiles()
    for table in INTERNAL_TABLES:
        planner.table(table)
    planner.menu_jobs()
    planner.plan.steps.extend(planner.after_columns)
    planner.indexes()
    planner.triggers()
    if catalog.supabase.present:
        supabase.plan(planner)
    if planner.plan.problems:
        planner.plan.steps.clear()
    return planner.plan
