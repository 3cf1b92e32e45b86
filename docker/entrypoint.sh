#!/bin/sh
# Entry point of every container from the Servicekonto image: runs the command it is given.
#
# IDP_DATABASE_URL_FILE: the database URL comes from this file (a compose secret), since it
# holds the database password, which belongs neither in the image nor in the compose file.
# The other secrets the app reads from files itself (IDP_SECRET_KEY_FILE, IDP_MAIL_PASSWORD_FILE).
set -eu
if [ -n "${IDP_DATABASE_URL_FILE:-}" ]; then
    if [ ! -r "$IDP_DATABASE_URL_FILE" ]; then
        echo "Servicekonto kann nicht starten: IDP_DATABASE_URL_FILE: $IDP_DATABASE_URL_FILE ist nicht lesbar" >&2
        exit 2
    fi
    IDP_DATABASE_URL="$(cat "$IDP_DATABASE_URL_FILE")"
    export IDP_DATABASE_URL
    unset IDP_DATABASE_URL_FILE
fi
exec "$@"
