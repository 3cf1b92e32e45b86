"""The data export against the data model: every column holding a citizen's data is exported or
left out with a reason, so a column added later cannot be silently forgotten.

The citizen's tables are ``citizen`` and every table with a foreign key to it, directly or
through another such table; idp/accounts/export.py describes each of their columns.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table

from idp.accounts.export import TABLES, TableExport, left_out
from idp.db import Base
from idp.models import import_all_models

CITIZEN = "citizen"
# Every model in the metadata, also those no module imported so far.
import_all_models()


def citizens_tables(metadata: MetaData) -> list[Table]:
    """``citizen`` and every table whose foreign keys lead to it, in the metadata's order."""
    linked = {CITIZEN}
    grown = True
    while grown:
        new = {table.name for table in metadata.sorted_tables if table.name not in linked
               and any(key.column.table.name in linked for key in table.foreign_keys)}
        linked |= new
        grown = bool(new)
    return [table for table in metadata.sorted_tables if table.name in linked]


def undescribed(metadata: MetaData, described: Mapping[str, TableExport]) -> list[str]:
    """What is wrong with ``described`` against ``metadata``: columns of the citizen's tables
    neither exported nor left out with a reason, columns both, described columns and tables
    that do not exist."""
    problems: list[str] = []
    tables = citizens_tables(metadata)
    for table in tables:
        export = described.get(table.name, TableExport(fields={}, left_out={}))
        columns = {column.name for column in table.columns}
        exported, omitted = set(export.fields), set(export.left_out)
        problems += [f"{table.name}.{name}: neither exported nor left out with a reason"
                     for name in sorted(columns - exported - omitted)]
        problems += [f"{table.name}.{name}: exported and left out" for name in
                     sorted(exported & omitted)]
        problems += [f"{table.name}.{name}: described, but no such column"
                     for name in sorted((exported | omitted) - columns)]
    problems += [f"{name}: described, but not a table of the citizen's data"
                 for name in sorted(set(described) - {table.name for table in tables})]
    return problems


def test_every_column_of_the_citizens_data_is_exported_or_left_out_with_a_reason() -> None:
    assert undescribed(Base.metadata, TABLES) == []


def test_every_reason_says_what_is_left_out_and_why() -> None:
    for omission in left_out():
        assert omission.what.strip() and omission.why.strip()


def test_the_check_finds_a_forgotten_column_also_in_a_table_linked_through_another() -> None:
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    metadata.tables[CITIZEN].append_column(Column("favourite_colour", String(20)))
    # Linked to the citizen only through a consent.
    Table("consent_note", metadata, Column("id", Integer, primary_key=True),
          Column("consent_id", ForeignKey("consent.id")), Column("note", String(200)))
    assert undescribed(metadata, TABLES) == [
        "citizen.favourite_colour: neither exported nor left out with a reason",
        "consent_note.consent_id: neither exported nor left out with a reason",
        "consent_note.id: neither exported nor left out with a reason",
        "consent_note.note: neither exported nor left out with a reason",
    ]


def test_the_check_finds_descriptions_of_what_does_not_exist() -> None:
    stale = TABLES | {"citizen": TableExport(
        fields={**TABLES["citizen"].fields, "nickname": TABLES["citizen"].fields["username"]},
        left_out={**TABLES["citizen"].left_out, "username": left_out()[0]}),
        "outbox_mail": TableExport(fields={}, left_out={})}
    assert undescribed(Base.metadata, stale) == [
        "citizen.username: exported and left out",
        "citizen.nickname: described, but no such column",
        "outbox_mail: described, but not a table of the citizen's data",
    ]
