"""The identity broker: requests to upstreams, their assertions seen, external links

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broker_request",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("upstream", sa.String(length=40), nullable=False),
        sa.Column("browser_session_hash", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("requested_level", sa.Integer(), nullable=False),
        sa.Column("created_at", idp.db.UtcDateTime(), nullable=False),
        sa.Column("expires_at", idp.db.UtcDateTime(), nullable=False),
        sa.Column("used_at", idp.db.UtcDateTime(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_broker_request")),
    )
    op.create_index(op.f("ix_broker_request_expires_at"), "broker_request", ["expires_at"])
    op.create_table(
        "broker_seen_assertion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upstream", sa.String(length=40), nullable=False),
        sa.Column("assertion_id", sa.String(length=256), nullable=False),
        sa.Column("keep_until", idp.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broker_seen_assertion")),
        sa.UniqueConstraint("upstream", "assertion_id",
                            name=op.f("uq_broker_seen_assertion_upstream")),
    )
    op.create_index(op.f("ix_broker_seen_assertion_keep_until"), "broker_seen_assertion",
                    ["keep_until"])
    op.create_table(
        "broker_external_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upstream", sa.String(length=40), nullable=False),
        sa.Column("name_id", sa.String(length=512), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("made_for_it", sa.Boolean(), nullable=False),
        sa.Column("bpk2_prefix", sa.String(length=20), nullable=False),
        sa.Column("linked_at", idp.db.UtcDateTime(), nullable=False),
        sa.Column("last_login_at", idp.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizen.id"],
                                name=op.f("fk_broker_external_link_citizen_id_citizen"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broker_external_link")),
        sa.UniqueConstraint("upstream", "name_id", name=op.f("uq_broker_external_link_upstream")),
    )
    op.create_index(op.f("ix_broker_external_link_citizen_id"), "broker_external_link",
                    ["citizen_id"])


def downgrade() -> None:
    op.drop_table("broker_external_link")
    op.drop_table("broker_seen_assertion")
    op.drop_table("broker_request")
