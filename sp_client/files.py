"""Where the portal finds its page templates and keeps its instance folders, in a checkout and
in an installed wheel (which carries ``templates/`` under ``<prefix>/share/servicekonto``)."""

from __future__ import annotations

import sys
from functools import cache
from importlib import metadata
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
# A file the wheel installs (setup.cfg, ``[options.data_files]``), relative to the prefix.
INSTALLED_TEMPLATE = "share/servicekonto/templates/portal/base.html"


def in_checkout() -> bool:
    """Whether this is a checkout (its setup.cfg lies beside sp_client/)."""
    return (CHECKOUT / "setup.cfg").is_file()


@cache
def templates_folder() -> Path:
    """``templates/``: the checkout's own, else the wheel's copy; FileNotFoundError if none."""
    if in_checkout():
        return CHECKOUT / "templates"
    for file in metadata.distribution("servicekonto").files or []:
        if file.as_posix().endswith(INSTALLED_TEMPLATE):
            return Path(str(file.locate())).resolve().parents[1]
    raise FileNotFoundError(f"servicekonto: no {INSTALLED_TEMPLATE}; reinstall the wheel")


def default_instance_folder() -> Path:
    """``instance/`` of a checkout, else ``<prefix>/var/servicekonto-instance`` (never
    site-packages); each portal has a folder of its own in it."""
    return CHECKOUT / "instance" if in_checkout() else \
        Path(sys.prefix) / "var" / "servicekonto-instance"
