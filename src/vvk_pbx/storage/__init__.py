"""The storage adapter: the call log in SQLite (embedded default) or PostgreSQL, with Alembic."""
