"""What the database holds now: the tables, columns, constraints, triggers, policies and
functions sous cares about, and whether Supabase's schema is there. Read-only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from core import db

SUPABASE_ROLES = ("anon", "authenticated", "service_role")


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str  # as format_type writes it: "character varying(80)"
    base_type: str  # without modifiers: "character varying"
    type_kind: str  # b base, e enum, d domain, c composite...
    not_null: bool
    default: str | None
    identity: str  # '' or 'a' / 'd'


@dataclass(frozen=True)
class ConstraintInfo:
    name: str
    kind: str  # c check, f foreign key, p primary key, u unique
    definition: str
    check_expr: str | None
    columns: tuple[str, ...]
    ref_table: str | None


@dataclass
class TableInfo:
    name: str
    kind: str
    rls: bool = False
    columns: dict[str, ColumnInfo] = field(default_factory=dict)
    constraints: list[ConstraintInfo] = field(default_factory=list)
    unique_columns: set[str] = field(default_factory=set)
    triggers: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    # role -> (can select, can write)
    privileges: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    @property
    def is_table(self) -> bool:
        return self.kind in ("r", "p")


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    args: str
    full_args: str  # with parameter defaults
    result: str
    source: str
    definition: str
    owner: str
    acl: tuple[str, ...]  # "grantee:PRIVILEGE" in order
    default_acl: bool

    @property
    def signature(self) -> str:
        return f"{self.name}({self.args})"

    def can_execute(self, grantee: str) -> bool:
        if self.default_acl:
            return grantee in ("PUBLIC", self.owner)
        return f"{grantee}:EXECUTE" in self.acl


@dataclass(frozen=True)
class Supabase:
    """Supabase's schema as far as it is there; `present` when sous should act on it."""

    roles: frozenset[str]
    auth_users: bool
    auth_uid: bool
    publication: bool
    publication_all_tables: bool
    published: frozenset[str]

    @property
    def present(self) -> bool:
        return self.auth_users and self.auth_uid and self.roles >= set(SUPABASE_ROLES)


@dataclass
class Catalog:
    server_version: int
    relations: dict[str, str]  # name -> relkind, every relation of the schema
    tables: dict[str, TableInfo]
    functions: dict[str, list[FunctionInfo]]  # name -> overloads
    supabase: Supabase

    def table(self, name: str) -> TableInfo | None:
        info = self.tables.get(name)
        return info if info is not None and info.is_table else None

    def function(self, name: str, args: str) -> FunctionInfo | None:
        want = norm_args(args)
        return next((f for f in self.functions.get(name, []) if norm_args(f.args) == want), None)


def norm_args(args: str) -> str:
    """'p_limit integer, p_resolver text' -> 'integer,text' (names do not make a signature)."""
    types = []
    for part in args.split(","):
        words = part.strip().split()
        if not words:
            continue
        if words[0] in ("IN", "OUT", "INOUT", "VARIADIC"):
            words = words[1:]
        types.append(" ".join(words[1:]) if len(words) > 1 else words[0])
    return ",".join(re.sub(r"\s+", " ", t) for t in types)


def read(conn: sa.Connection, tables: list[str], functions: list[str]) -> Catalog:
    """Everything the planner needs, in a few catalog queries."""
    found_relations = db.fetch_all(conn, "adopt_relations")
    relations = {r["name"]: r["kind"] for r in found_relations}
    rls = {r["name"]: bool(r["rls"]) for r in found_relations}
    infos = {t: TableInfo(t, relations[t], rls.get(t, False)) for t in tables if t in relations}
    params: dict[str, Any] = {"tables": list(infos)}
    for r in db.fetch_all(conn, "adopt_columns", params):
        infos[r["table_name"]].columns[r["column_name"]] = ColumnInfo(
            r["column_name"],
            r["data_type"],
            r["base_type"],
            r["type_kind"],
            bool(r["not_null"]),
            r["default_expr"],
            r["identity"] or "",
        )
    for r in db.fetch_all(conn, "adopt_constraints", params):
        infos[r["table_name"]].constraints.append(
            ConstraintInfo(
                r["name"], r["kind"], r["definition"], r["check_expr"], tuple(r["columns"]), r["ref_table"]
            )
        )
    for r in db.fetch_all(conn, "adopt_unique_columns", params):
        infos[r["table_name"]].unique_columns.add(r["column_name"])
    for r in db.fetch_all(conn, "adopt_triggers", params):
        infos[r["table_name"]].triggers.add(r["name"])
    for r in db.fetch_all(conn, "adopt_policies", params):
        infos[r["table_name"]].policies.add(r["name"])
    roles = frozenset(r["name"] for r in db.fetch_all(conn, "adopt_roles", {"names": list(SUPABASE_ROLES)}))
    if roles:
        for r in db.fetch_all(conn, "adopt_table_privileges", {**params, "roles": sorted(roles)}):
            infos[r["table_name"]].privileges[r["role"]] = (bool(r["can_select"]), bool(r["can_write"]))
    found: dict[str, list[FunctionInfo]] = {}
    for r in db.fetch_all(conn, "adopt_functions", {"names": functions}):
        found.setdefault(r["name"], []).append(
            FunctionInfo(
                r["name"],
                r["args"],
                r["full_args"],
                r["result"],
                r["source"],
                r["definition"],
                r["owner"],
                tuple(r["acl"]),
                bool(r["default_acl"]),
            )
        )
    sb = db.fetch_one(conn, "adopt_supabase") or {}
    supabase = Supabase(
        roles=roles,
        auth_users=bool(sb.get("auth_users")),
        auth_uid=bool(sb.get("auth_uid")),
        publication=bool(sb.get("publication")),
        publication_all_tables=bool(sb.get("all_tables")),
        published=frozenset(sb.get("published") or ()),
    )
    version = int(db.fetch_value(conn, "adopt_server_version") or 0)
    return Catalog(version, relations, infos, found, supabase)
