"""Small DDL helpers shared by the planner modules: quoting, steps, function ACLs."""

from __future__ import annotations

from dataclasses import dataclass

from core.adoption.catalog import FunctionInfo, norm_args
from core.adoption.spec import Function


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Step:
    action: str  # create | add | rename | replace | grant | enable | publish
    summary: str
    sql: str
    undo: str


def type_signature(name: str, args: str) -> str:
    return f"{name}({norm_args(args)})"


def drop_sql(f: Function) -> str:
    return f"DROP FUNCTION {type_signature(f.name, f.args)}"


def acl_restore_sql(have: FunctionInfo) -> str:
    """Puts a function's ACL back entry by entry, in its original order (pg_dump prints them so)."""
    sig = type_signature(have.name, have.args)
    revoke = (
        "DO $sous$ DECLARE r record; BEGIN FOR r IN "
        "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
        "ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS who "
        "FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
        f"WHERE p.oid = {literal(sig)}::regprocedure LOOP "
        f"EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %s', {literal(sig)}, r.who); END LOOP; END $sous$"
    )
    entries = ["PUBLIC:EXECUTE", f"{ident(have.owner)}:EXECUTE"] if have.default_acl else list(have.acl)
    grants = [f"GRANT {e.rsplit(':', 1)[1]} ON FUNCTION {sig} TO {e.rsplit(':', 1)[0]}" for e in entries]
    return ";\n".join([revoke, *grants])
