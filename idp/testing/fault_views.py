"""The test-control API's fault injection: ``PUT``/``DELETE /testing/api/portals/{name}/fault``
and ``GET /testing/api/faults`` (described in ``openapi.yaml``)."""

from __future__ import annotations

from flask import Response

from idp.container import app_parts
from idp.db import db
from idp.testing import faults
from idp.testing.api import answer, api, json_object
from idp.testing.errors import WorkbenchError
from idp.testing.portal_names import registered_portal


@api.put("/portals/<name>/fault")
def set_fault(name: str) -> Response:
    body = json_object()
    fault, count = body.get("fault"), body.get("count", 1)
    if set(body) - {"fault", "count"} or not isinstance(fault, str) or \
            not isinstance(count, int) or isinstance(count, bool):
        raise WorkbenchError("Erwartet wird {\"fault\": NAME, \"count\": ANZAHL} (count: 1, wenn "
                      "nicht angegeben).")
    portal = registered_portal(app_parts().saml.registry, name)
    row = faults.set_fault(db.session, portal.entity_id, fault, count)
    return answer({"portal": name, "fault": row.fault, "remaining": row.remaining})


@api.delete("/portals/<name>/fault")
def clear_fault(name: str) -> Response:
    faults.clear_fault(db.session, registered_portal(app_parts().saml.registry, name).entity_id)
    return Response(status=204)


@api.get("/faults")
def list_faults() -> Response:
    names = {portal.entity_id: portal.name for portal in app_parts().saml.registry.portals()}
    return answer({
        "faults": [{"name": fault.name, "what": fault.what, "expected": fault.expected}
                   for fault in faults.FAULTS.values()],
        "waiting": [{"portal": names.get(row.portal, row.portal), "fault": row.fault,
                     "remaining": row.remaining} for row in faults.waiting_faults(db.session)],
    })
