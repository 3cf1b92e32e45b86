"""Run by test_installed_wheel.py with the python of a venv that holds the installed wheel:
``python -I installed_wheel_pages.py FOLDER``. Asks the IdP (settings from IDP_*) and the demo
portal "dueren" for their pages and prints, as JSON, where the code and the shipped files came
from and what each page answered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import idp
import sp_client
from idp.config import load_config
from idp.shipped import default_instance_folder

IDP_PAGES = ("/anmelden", "/registrieren", "/registrieren/benutzername",
             "/static/servicekonto.css")
PORTAL_PAGES = ("/", "/static/portal.css")


def main(folder: Path) -> None:
    config = load_config()
    idp_client = idp.create_app().test_client()
    answers = {f"idp {path}": idp_client.get(path) for path in IDP_PAGES}
    metadata = folder / "idp-metadata.xml"
    metadata.write_bytes(idp_client.get("/saml/metadata").data)
    portal = sp_client.create_app("dueren", idp_metadata=str(metadata),
                                  instance_path=folder / "portal-dueren")
    portal_client, portal_url = portal.test_client(), portal.config["PORTAL"].base_url
    answers |= {f"portal {path}": portal_client.get(path, base_url=portal_url)
                for path in PORTAL_PAGES}
    json.dump({
        "modules": [idp.__file__, sp_client.__file__],
        "policy_dir": str(config.policy_dir), "template_dir": str(config.template_dir),
        "instance_default": str(default_instance_folder()),
        "pages": {name: [answer.status_code, answer.get_data(as_text=True)]
                  for name, answer in answers.items()},
    }, sys.stdout)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
