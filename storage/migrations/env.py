"""Alembic environment: the engine is handed in by storage.db (no URL in an ini file).

On PostgreSQL several recorders may start at once against one catalogue: the migration runs under a
transaction-scoped advisory lock, so the second waits, then finds the schema current and does nothing.
"""

from alembic import context
from sqlalchemy import text

from storage.models import Base

MIGRATION_LOCK = 0x7265636F72646D67  # "recordmg": apart from the ledger's and the leader's locks

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
