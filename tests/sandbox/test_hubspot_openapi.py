"""The sandbox's raw HubSpot answers checked against HubSpot's own OpenAPI descriptions.

Each answer is fetched over HTTP (no client deserialisation in between) and validated with jsonschema
against the response schema the spec file gives for that path, method and status. The spec paths use
object type ids ("/crm/v3/objects/0-3" for deals); `SPEC_PATHS` maps the paths the client sends onto them.

One documented relaxation: the specs type property values, association labels and owner user ids as
plain strings/integers, but HubSpot sends null for empty ones (api-notes §2.3: "Property values are
strings or null"; an unlabeled association type has "label": null), so keys whose value is null are
dropped before validating. The 429 body is HubSpot's rate-limit shape (errorType/policyName, no category,
api-notes §2.5), which the specs' Error schema does not describe; it is checked by hand in
test_hubspot_faults.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft7Validator

from connectors.sandbox.testing import running_sandbox
from connectors.sandbox.world import World
from tests.sandbox.test_hubspot_support import DEAL, OWNER, SPECS, build_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = build_world(tmp_path)
    yield built
    built.close()


@cache
def _spec(name: str) -> dict[str, Any]:
    return json.loads((SPECS / name).read_text())


def _schema(spec_file: str, path: str, method: str, status: str) -> dict[str, Any]:
    spec = _spec(spec_file)
    responses = spec["paths"][path][method]["responses"]
    response = responses.get(status) or responses["default"]
    if "$ref" in response:  # "#/components/responses/Error"
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    content = next(iter(response["content"].values()))
    return {**content["schema"], "components": spec["components"]}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _check(answer: requests.Response, spec_file: str, spec_path: str, method: str = "get") -> dict[str, Any]:
    body = answer.json()
    schema = _schema(spec_file, spec_path, method, str(answer.status_code))
    problems = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
                for error in Draft7Validator(schema).iter_errors(_without_nulls(body))]
    assert problems == [], f"{answer.request.method} {answer.url} ({answer.status_code}) vs {spec_file} {spec_path}"
    return body


OBJECT_SPECS = {  # path segment the client sends -> (spec file, path prefix in the spec)
    "deals": ("deals.json", "/crm/v3/objects/0-3"),
    "contacts": ("contacts.json", "/crm/v3/objects/contacts"),
    "companies": ("companies.json", "/crm/v3/objects/companies"),
    "line_items": ("lineItems.json", "/crm/v3/objects/line_items"),
    "products": ("products.json", "/crm/v3/objects/products"),
    "calls": ("calls.json", "/crm/v3/objects/calls"),
    "emails": ("emails.json", "/crm/v3/objects/emails"),
    "meetings": ("meetings.json", "/crm/v3/objects/meetings"),
    "tasks": ("tasks.json", "/crm/v3/objects/tasks"),
    "notes": ("notes.json", "/crm/v3/objects/notes"),
    "leads": ("leads.json", "/crm/v3/objects/leads"),
}


def _spec_prefix(spec_file: str, wanted: str) -> str:
    """The spec's own spelling of an object path (some files use ids like 0-3, others names)."""
    paths = _spec(spec_file)["paths"]
    return wanted if wanted in paths else next(path for path in paths if path.startswith("/crm/v3/objects/")
                                               and path.count("/") == 4)


def _by_id_path(spec_file: str, prefix: str) -> str:
    return next(path for path in _spec(spec_file)["paths"] if path.startswith(prefix + "/{"))


@pytest.fixture
def api(world: World) -> Iterator[tuple[str, requests.Session]]:
    with running_sandbox(world, serve_as="hubspot", limits_scale=0) as sandbox:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {sandbox.hubspot_token()}"
        yield sandbox.hubspot.base_url, session
        session.close()


def test_objects_list_get_and_search_match_the_specs(api: tuple[str, requests.Session]) -> None:
    base, session = api
    for name, (spec_file, wanted) in OBJECT_SPECS.items():
        prefix = _spec_prefix(spec_file, wanted)
        page = _check(session.get(f"{base}/crm/v3/objects/{name}", params={
            "limit": 2, "associations": "deals,contacts,companies", "propertiesWithHistory": "hs_lastmodifieddate"}),
            spec_file, prefix)
        assert page["results"], name
        record_id = page["results"][0]["id"]
        _check(session.get(f"{base}/crm/v3/objects/{name}/{record_id}"), spec_file, _by_id_path(spec_file, prefix))
        found = _check(session.post(f"{base}/crm/v3/objects/{name}/search", json={"limit": 1}), spec_file,
                       f"{prefix}/search", "post")
        assert found["total"] >= 1
    deals = _check(session.get(f"{base}/crm/v3/objects/deals", params={
        "limit": 3, "propertiesWithHistory": "dealstage,amount", "associations": "line_items"}),
        "deals.json", "/crm/v3/objects/0-3")
    assert deals["results"][0]["propertiesWithHistory"]["dealstage"][0]["value"] == "closedwon"
    archived = _check(session.get(f"{base}/crm/v3/objects/deals", params={"archived": "true"}), "deals.json",
                      "/crm/v3/objects/0-3")
    assert archived["results"][0]["archivedAt"] == "2026-02-01T12:00:00.000Z"


def test_error_bodies_match_the_specs_error_schema(api: tuple[str, requests.Session]) -> None:
    base, session = api
    missing = session.get(f"{base}/crm/v3/objects/deals/{DEAL + 999}")
    assert _check(missing, "deals.json", "/crm/v3/objects/0-3/{dealId}")["category"] == "OBJECT_NOT_FOUND"
    bad = session.post(f"{base}/crm/v3/objects/deals/search", json={"limit": 500})
    assert _check(bad, "deals.json", "/crm/v3/objects/0-3/search", "post")["category"] == "VALIDATION_ERROR"
    unauthorized = requests.get(f"{base}/crm/v3/objects/deals", headers={"Authorization": "Bearer nope"})
    assert unauthorized.status_code == 401
    _check(unauthorized, "deals.json", "/crm/v3/objects/0-3")
    owner = session.get(f"{base}/crm/v3/owners/{OWNER + 99}")
    assert owner.status_code == 404
    _check(owner, "crmOwners.json", "/crm/v3/owners/{ownerId}")


def test_associations_owners_pipelines_and_properties_match_the_specs(api: tuple[str, requests.Session]) -> None:
    base, session = api
    page = session.get(f"{base}/crm/v4/objects/deals/{DEAL + 1}/associations/companies")
    _check(page, "associations.json", "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}")
    batch_path = "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"
    complete = session.post(f"{base}/crm/v4/associations/deals/contacts/batch/read",
                            json={"inputs": [{"id": str(DEAL + 1)}]})
    assert complete.status_code == 200
    _check(complete, "associations.json", batch_path, "post")
    partial = session.post(f"{base}/crm/v4/associations/deals/contacts/batch/read",
                           json={"inputs": [{"id": str(DEAL + 1)}, {"id": str(DEAL + 7)}]})
    assert partial.status_code == 207
    _check(partial, "associations.json", batch_path, "post")
    owners = _check(session.get(f"{base}/crm/v3/owners/", params={"limit": 1}), "crmOwners.json", "/crm/v3/owners")
    assert owners["paging"]["next"]["after"] == str(OWNER + 2)
    _check(session.get(f"{base}/crm/v3/owners/", params={"archived": "true"}), "crmOwners.json", "/crm/v3/owners")
    _check(session.get(f"{base}/crm/v3/owners/{OWNER + 1}"), "crmOwners.json", "/crm/v3/owners/{ownerId}")
    pipelines = _check(session.get(f"{base}/crm/v3/pipelines/deals"), "pipelines.json",
                       "/crm/v3/pipelines/{objectType}")
    assert pipelines["results"][0]["stages"][3]["metadata"] == {"isClosed": "true", "probability": "1.0"}
    _check(session.get(f"{base}/crm/v3/pipelines/deals/default"), "pipelines.json",
           "/crm/v3/pipelines/{objectType}/{pipelineId}")
    _check(session.get(f"{base}/crm/v3/pipelines/deals/default/stages"), "pipelines.json",
           "/crm/v3/pipelines/{objectType}/{pipelineId}/stages")
    for object_type in ("deals", "contacts", "calls", "line_items"):
        _check(session.get(f"{base}/crm/v3/properties/{object_type}"), "properties.json",
               "/crm/v3/properties/{objectType}")
    _check(session.get(f"{base}/crm/v3/properties/deals/dealstage"), "properties.json",
           "/crm/v3/properties/{objectType}/{propertyName}")


def test_the_validation_catches_a_body_that_breaks_the_spec() -> None:
    schema = _schema("deals.json", "/crm/v3/objects/0-3", "get", "200")
    broken = {"results": [{"id": 9102, "properties": {"amount": 1500}, "archived": "no"}]}
    messages = sorted(error.message for error in Draft7Validator(schema).iter_errors(broken))
    assert len(messages) == 5  # id and amount not strings, archived not boolean, createdAt and updatedAt missing
