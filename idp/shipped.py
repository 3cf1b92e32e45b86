"""Where the shipped ``templates/`` and ``policies/`` are, in a checkout and in an installed wheel.

Both folders stay at the top of the repository. A checkout (and so an editable install) reads
them there, so that an edit shows at once; a wheel installs them as data files under
``<prefix>/share/servicekonto`` (setup.cfg, ``[options.data_files]``), found through the
distribution's own record of its files, whatever the installation scheme.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Literal

SOURCE_TREE = Path(__file__).resolve().parent.parent
DISTRIBUTION = "servicekonto"
# Relative to the installation prefix; the same as in setup.cfg.
INSTALLED_FOLDER = "share/servicekonto"

ShippedFolder = Literal["templates", "policies"]


def in_checkout() -> bool:
    """Whether this is a checkout: its setup.cfg lies beside idp/ (an installed idp/ has
    site-packages there)."""
    return (SOURCE_TREE / "setup.cfg").is_file()


@cache
def shipped_folder(name: ShippedFolder) -> Path:
    """The folder ``name``: the checkout's own when running from one, else the wheel's copy.

    Raises :class:`FileNotFoundError` when neither is there (a broken installation).
    """
    return SOURCE_TREE / name if in_checkout() else _installed_data() / name


def default_instance_folder() -> Path:
    """Where SQLite, the development secret and keys go when ``IDP_INSTANCE_PATH`` is not set:
    ``instance/`` of a checkout; for an installed wheel ``<prefix>/var/servicekonto-instance``,
    as Flask does for installed apps (never into site-packages)."""
    return SOURCE_TREE / "instance" if in_checkout() else \
        Path(sys.prefix) / "var" / "servicekonto-instance"


def _installed_data() -> Path:
    marker = f"{INSTALLED_FOLDER}/policies/password.yaml"
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.as_posix().endswith(marker):
            located = Path(str(file.locate())).resolve()
            return located.parents[1]
    raise FileNotFoundError(
        f"{DISTRIBUTION}: neither a checkout nor an installed {INSTALLED_FOLDER} "
        "(templates, policies); reinstall the wheel")
