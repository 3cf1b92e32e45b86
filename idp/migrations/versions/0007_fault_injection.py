"""QA workbench: the faults waiting for a portal

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 20:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "testing_portal_fault",
        sa.Column("portal", sa.String(length=1024), nullable=False),
        sa.Column("fault", sa.String(length=64), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("set_at", idp.db.UtcDateTime(), nullable=True),
        sa.Column("last_answer", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("portal", name=op.f("pk_testing_portal_fault")),
    )


def downgrade() -> None:
    op.drop_table("testing_portal_fault")
