"""Storage: SQLAlchemy 2 async models, queries and Alembic migrations.

One schema serves SQLite (the embedded default) and PostgreSQL (production);
metric documents are JSON on SQLite and JSONB on PostgreSQL.
"""
