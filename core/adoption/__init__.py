"""Schema adoption: sous joins an existing database (the app's Supabase project) in place.

catalog reads what is there, plan compares it with spec and lists the steps (each with its
undo), apply runs them in the migration's transaction and records the undo for the downgrade.
"""
