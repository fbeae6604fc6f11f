"""The OpenAPI description covers the whole resource tree, and is served."""

import json
import re

import pytest_twisted
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from hiitrack.app import HiiTrack
from hiitrack.store.sqlite import SQLiteStore
from hiitrack.web.render import ErrorResource
from hiitrack.web.static import STATIC, StaticFile
from hiitrack.web.tree import Root

SAMPLES = [b"sample", b"AAAAAAAAAAAAAAAAAAAAAA"]


def _methods(resource: Resource) -> set[str]:
    if isinstance(resource, StaticFile):
        return {"get"}
    return {name[len("handle_") :].lower() for name in dir(resource) if name.startswith("handle_")}


def _walk(resource: Resource, prefix: str) -> dict[str, set[str]]:
    """Every route under `resource`, its dynamic segments written as {x}."""
    routes = {prefix or "/": _methods(resource)} if _methods(resource) else {}
    named = {**getattr(resource, "children", {}), **getattr(resource, "files", {})}
    for segment in getattr(resource, "CHILDREN", {}):  # children built when asked (hiitrack.web.tree.Bucket)
        named[segment] = resource.getChild(segment, DummyRequest([segment]))
    for segment, child in named.items():
        routes.update(_walk(child, f"{prefix}/{segment.decode()}"))
    if type(resource).getChild is not Resource.getChild and not isinstance(resource, StaticFile):
        for sample in SAMPLES:
            request = DummyRequest([sample])
            request.path = b"/" + sample
            child = resource.getChild(sample, request)
            if not isinstance(child, ErrorResource) and child is not resource and sample not in named:
                routes.update(_walk(child, prefix + "/{x}"))
                break
    return routes


def _spec() -> dict:
    return json.loads((STATIC / "openapi.json").read_text())


def test_every_route_of_the_tree_is_described(tmp_path):
    tree = _walk(Root(HiiTrack(SQLiteStore(str(tmp_path / "x.db")))), "")
    described = {
        re.sub(r"\{[^}]+\}", "{x}", path): {method for method in item if method != "parameters"}
        for path, item in _spec()["paths"].items()
    }
    assert len(tree) >= 11
    for route, methods in tree.items():
        assert route in described, f"{route} is missing from openapi.json"
        assert methods == described[route], f"{route}: tree has {methods}, description {described[route]}"


def test_every_operation_lists_its_errors_as_json():
    for path, item in _spec()["paths"].items():
        for method, operation in item.items():
            if method != "parameters" and path.startswith("/{user}"):
                assert "400" in operation["responses"], (method, path)


@pytest_twisted.ensureDeferred
async def test_the_description_is_served(server):
    answer = await server.client.get("/openapi.json")
    assert answer.status == 200
    assert answer.header("Content-Type") == "application/json"
    assert answer.json["openapi"].startswith("3.")
    again = await server.client.get("/openapi.json", headers={"If-None-Match": answer.header("ETag")})
    assert again.status == 304
