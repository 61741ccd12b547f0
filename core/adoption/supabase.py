"""Steps that apply only when Supabase's schema is there (auth.users, auth.uid(), the roles
anon/authenticated/service_role): menu jobs tied to auth.users and readable by their owner only
(row-level security), published to supabase_realtime, and sous's functions and internal tables
closed to the API roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.adoption import functions as fn
from core.adoption.ddl import acl_restore_sql, type_signature
from core.adoption.spec import INTERNAL_TABLES, LOG_TABLE, MENU_JOBS, PLANS_VIEW, SUPABASE_MENU_POLICY

if TYPE_CHECKING:
    from core.adoption.plan import Planner

API_ROLES = "PUBLIC, anon, authenticated"
MENU_FK = "menu_extraction_jobs_user_id_auth_users_fkey"
VERSION_TABLE = "alembic_version"  # created by alembic in the same transaction, before the plan


def plan(p: Planner) -> None:
    _menu_jobs(p)
    _functions(p)
    _internal_tables(p)


def _menu_jobs(p: Planner) -> None:
    sb = p.catalog.supabase
    created = MENU_JOBS.name in p.plan.created
    info = p.infos.get(MENU_JOBS.name)
    has_fk = info is not None and any(
        c.kind == "f" and c.columns == ("user_id",) and c.ref_table == "auth.users" for c in info.constraints
    )
    if not has_fk:
        # NOT VALID on the app's table: existing rows are not re-checked (nor the table scanned
        # under lock); every new or changed row is. ON DELETE CASCADE keeps Supabase's user
        # deletion working.
        valid = "" if created else " NOT VALID"
        p.step(
            "add",
            "add foreign key menu_extraction_jobs.user_id -> auth.users(id) ON DELETE CASCADE",
            f"ALTER TABLE menu_extraction_jobs ADD CONSTRAINT {MENU_FK} FOREIGN KEY (user_id) "
            f"REFERENCES auth.users (id) ON DELETE CASCADE{valid}",
            f"ALTER TABLE menu_extraction_jobs DROP CONSTRAINT {MENU_FK}",
        )
    if created or (info is not None and not info.rls):
        p.step(
            "enable",
            "enable row-level security on menu_extraction_jobs",
            "ALTER TABLE menu_extraction_jobs ENABLE ROW LEVEL SECURITY",
            "" if created else "ALTER TABLE menu_extraction_jobs DISABLE ROW LEVEL SECURITY",
        )
    if info is None or SUPABASE_MENU_POLICY not in info.policies:
        p.step(
            "create",
            f"create policy {SUPABASE_MENU_POLICY}: authenticated reads only its own menu jobs",
            f"CREATE POLICY {SUPABASE_MENU_POLICY} ON menu_extraction_jobs FOR SELECT TO authenticated "
            "USING ((SELECT auth.uid()) = user_id)",
            f"DROP POLICY {SUPABASE_MENU_POLICY} ON menu_extraction_jobs",
        )
    if created:
        # A table sous creates gets only what its users need: the realtime client reads its own
        # rows (RLS); writes go through the API. Default privileges would give anon ALL.
        p.step(
            "grant",
            "grant SELECT on menu_extraction_jobs to authenticated only (RLS: own rows)",
            f"REVOKE ALL ON menu_extraction_jobs FROM {API_ROLES};\n"
            "GRANT SELECT ON menu_extraction_jobs TO authenticated;\n"
            "GRANT ALL ON menu_extraction_jobs TO service_role",
        )
    elif info is not None and not info.privileges.get("authenticated", (False, False))[0]:
        p.step(
            "grant",
            "grant SELECT on menu_extraction_jobs to authenticated (RLS: own rows; for realtime)",
            "GRANT SELECT ON menu_extraction_jobs TO authenticated",
            "REVOKE SELECT ON menu_extraction_jobs FROM authenticated",
        )
    published = MENU_JOBS.name in sb.published or (p.renamed_ocr_jobs and "ocr_jobs" in sb.published)
    if sb.publication and not sb.publication_all_tables and not published:
        p.step(
            "publish",
            "add menu_extraction_jobs to publication supabase_realtime",
            "ALTER PUBLICATION supabase_realtime ADD TABLE menu_extraction_jobs",
            "ALTER PUBLICATION supabase_realtime DROP TABLE menu_extraction_jobs",
        )


def _functions(p: Planner) -> None:
    for f in fn.ALL:
        sig = type_signature(f.name, f.args)
        sql = (
            f"REVOKE ALL ON FUNCTION {sig} FROM {API_ROLES};\nGRANT EXECUTE ON FUNCTION {sig} TO service_role"
        )
        summary = f"revoke EXECUTE on {sig} from PUBLIC, anon, authenticated; grant it to service_role"
        if f.name in p.plan.created:
            p.step("grant", summary, sql)
            continue
        have = p.catalog.function(f.name, f.args)
        if have is None:
            continue
        open_to_api = any(have.can_execute(g) for g in ("PUBLIC", "anon", "authenticated"))
        if open_to_api or not have.can_execute("service_role"):
            p.step("grant", summary, sql, acl_restore_sql(have))


def _internal_tables(p: Planner) -> None:
    identity = {t.name: f"{t.name}_id_seq" for t in INTERNAL_TABLES if "IDENTITY" in t.create_key}
    identity[LOG_TABLE] = f"{LOG_TABLE}_seq_seq"
    names = [t.name for t in INTERNAL_TABLES] + [LOG_TABLE, PLANS_VIEW, VERSION_TABLE]
    for name in names:
        info = p.catalog.tables.get(name)
        created = name in p.plan.created
        readable = info is not None and any(
            any(info.privileges.get(role, (False, False))) for role in ("anon", "authenticated")
        )
        if not created and not readable:
            continue
        sql = f"REVOKE ALL ON {name} FROM {API_ROLES};\nGRANT ALL ON {name} TO service_role"
        if created and name in identity:
            # Supabase's default privileges also open the identity's sequence to the API roles.
            sql += f";\nREVOKE ALL ON SEQUENCE {identity[name]} FROM {API_ROLES}"
        p.step(
            "grant",
            f"revoke everything on {name} from PUBLIC, anon, authenticated; grant it to service_role",
            sql,
        )
