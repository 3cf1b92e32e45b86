"""Reading form fields strictly: each expected field at most once, text only."""

from __future__ import annotations

import typing as t
from collections.abc import Iterable
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.formparser import FormDataParser


class DuplicatedField(BadRequest):
    description = "a form field was sent more than once"


def single_values(form: MultiDict[str, str], names: Iterable[str]) -> dict[str, str]:
    """The value of each named field ("" if absent); a field sent twice is a 400.

    Duplicated fields are how parameter pollution slips a second value past a check that reads
    the first, so they are refused outright instead of picking one.
    """
    values = {}
    for name in names:
        given = form.getlist(name)
        if len(given) > 1:
            raise DuplicatedField()
        values[name] = given[0] if given else ""
    return values


ParseResult = tuple[t.IO[bytes], MultiDict[str, t.Any], MultiDict[str, FileStorage]]


class Utf8FormDataParser(FormDataParser):
    """Decodes urlencoded forms the way werkzeug already decodes multipart ones.

    Werkzeug keeps a percent-escape that is not UTF-8 as literal text ("%FF%FE" would become a
    valid Vorname) and drops the whole form when the raw body is not UTF-8. Here both become
    U+FFFD, which the field checks refuse with a German message naming the field.
    """

    def _parse_urlencoded(self, stream: t.IO[bytes], mimetype: str,
                          content_length: int | None, options: dict[str, str]) -> ParseResult:
        # The body is already capped by MAX_CONTENT_LENGTH before it is read here.
        items = parse_qsl(stream.read().decode("utf-8", "replace"), keep_blank_values=True,
                          errors="replace")
        return stream, self.cls(items), self.cls()


class FormRequest(Request):
    """Flask's request with :class:`Utf8FormDataParser` (installed by the app factory)."""

    form_data_parser_class = Utf8FormDataParser
