"""The API's documentation pages load nothing from elsewhere: every script, style and
icon of ``/docs`` and ``/redoc`` is served by the API itself, and ``GAM_DOCS=false``
takes the pages, the schema and their assets away."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra.settings import Settings
from services.api.app import create_app

ASSET = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(store="sqlite", sqlite_path=tmp_path / "gam.db")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_only_what_the_api_serves(settings: Settings, page: str) -> None:
    with TestClient(create_app(settings)) as client:
        answer = client.get(page)
        assert answer.status_code == 200
        assert "http://" not in answer.text
        assert "https://" not in answer.text
        assets = [a for a in ASSET.findall(answer.text) if a != "/openapi.json"]
        assert assets, answer.text
        for asset in assets:
            assert asset.startswith("/docs-assets/")
            assert client.get(asset).status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_without_docs_neither_the_pages_nor_their_assets_are_served(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"docs": False}))) as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui.css"):
            assert client.get(path).status_code == 404, path
