"""The portal registry in the database: the portals and the registry's version

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 23:40:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import idp.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=1024), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("metadata_document", sa.LargeBinary(), nullable=True),
        sa.Column("metadata_certificate", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("changed_at", idp.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_portal")),
        sa.UniqueConstraint("entity_id", name=op.f("uq_portal_entity_id")),
    )
    version = op.create_table(
        "portal_registry_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", idp.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_registry_version")),
    )
    # The row every change locks (SELECT … FOR UPDATE), so that workers starting together
    # import the policy folder one after the other; the code copes without it too.
    op.bulk_insert(version, [{"id": 1, "version": 0, "changed_at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("portal_registry_version")
    op.drop_table("portal")
