"""``IDP_LOGIN_THROTTLE_WINDOW_MINUTES``: the login throttle counts an account's failures within
the configured window, and a new window starts the count (and the owner's warning) anew."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Browser, Clock, activate, app_with, log_in, outbox, register


@pytest.mark.parametrize(("window_minutes", "warnings_expected"), [(60, 1), (2, 2)])
def test_the_owner_is_warned_once_per_throttle_window_of_the_configured_length(
        settings: dict[str, Any], clock: Clock, window_minutes: int,
        warnings_expected: int) -> None:
    with app_with(settings, login_throttle_window_minutes=window_minutes) as app:
        browser = Browser(app.test_client())
        register(browser)
        activate(browser, app)
        for _ in range(2):
            for _ in range(5):
                log_in(browser, password="Falsch-123 x")
            clock.advance(minutes=2, seconds=1)

        warnings = [mail for mail in outbox(app)
                    if "fehlgeschlagene Anmeldeversuche" in mail.subject]

    assert len(warnings) == warnings_expected
