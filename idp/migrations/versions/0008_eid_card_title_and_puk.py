"""eID test cards: the Doktorgrad, and the PUK that unblocks a blocked PIN

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 23:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eid_test_card") as batch_op:
        batch_op.add_column(sa.Column("doctoral_degree", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("puk", sa.String(length=10), nullable=True))
        batch_op.add_column(
            sa.Column("puk_uses", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("eid_test_card") as batch_op:
        batch_op.drop_column("puk_uses")
        batch_op.drop_column("puk")
        batch_op.drop_column("doctoral_degree")
