"""The one-shot service `credentials` of docker/compose.yaml: the secrets a fresh stack needs.

Makes each file that is missing and never touches one that exists, so that a second start, or
files an operator put into the volumes first, keep their values (docs/deployment.md):

- ``<postgres>/postgres_password``: PostgreSQL's password (POSTGRES_PASSWORD_FILE), readable by
  the database's own user, hence mode 0644 in a volume only PostgreSQL and this one-shot mount;
- ``<idp>/idp_database_url``: the IdP's database URL with that password (IDP_DATABASE_URL_FILE);
- ``<idp>/idp_secret_key``: the IdP's secret key (IDP_SECRET_KEY_FILE).

The IdP's files are 0600 (the image's user reads them). Values are never printed.

    python /app/docker/credentials.py IDP_FOLDER POSTGRES_FOLDER
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

DATABASE_URL = "postgresql+psycopg://servicekonto:{password}@postgres:5432/servicekonto"


def create(path: Path, value: str, mode: int) -> bool:
    """Write ``value`` to ``path`` unless the file exists (O_EXCL: also not in a race)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    os.chmod(path, mode)  # the umask must not take the read bit PostgreSQL needs
    return True


def make_missing(idp: Path, postgres: Path) -> list[str]:
    """Create what is missing; the names of the files made."""
    made = []
    password_file = postgres / "postgres_password"
    if create(password_file, secrets.token_urlsafe(32), 0o644):
        made.append(str(password_file))
    # From the password in the volume: the operator's own one as well as ours.
    password = password_file.read_text(encoding="utf-8").strip()
    url = DATABASE_URL.format(password=quote(password, safe=""))
    for path, value in ((idp / "idp_database_url", url),
                        (idp / "idp_secret_key", secrets.token_urlsafe(48))):
        if create(path, value, 0o600):
            made.append(str(path))
    return made


def main(arguments: list[str]) -> int:
    if len(arguments) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    made = make_missing(Path(arguments[0]), Path(arguments[1]))
    print(f"made: {', '.join(made)}" if made else "every secret was there already")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
