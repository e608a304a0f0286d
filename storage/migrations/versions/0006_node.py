"""calls.node and retention_intents.node: which recorder holds the file (issue 14, several recorders).

Rows that exist before this migration were written by one recorder, the one whose catalogue this
was; they get the node name of the recorder that runs the migration (``storage.db.upgrade(engine,
node=...)``: the daemon passes its configured ``node``, anything else the host's name). So upgrade a
single recorder first, under the node name it keeps, and only then add further nodes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import context, op

from storage.nodes import default_node

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("calls", "retention_intents")


def upgrade() -> None:
    node = context.config.attributes.get("node") or default_node()
    for table in TABLES:
        op.add_column(table, sa.Column("node", sa.String(64), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET node = :node").bindparams(node=node))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("node", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("node")
