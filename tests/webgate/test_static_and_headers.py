"""The page's files and the SDK's: each module the page or a site imports is served (and nothing
else is), with the right content type, and every answer of the gateway carries the security
headers; the SDK's modules may be read from any origin."""

from __future__ import annotations

import re

import aiohttp
import pytest

from chorus.webgate.app import SDK_MODULES, STATIC_DIR, STATIC_FILES
from chorus.webgate.security import SECURITY_HEADERS

IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["']\./([\w./-]+)["']""", re.MULTILINE)
CONTENT_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".json": "application/json",
                 ".svg": "image/svg+xml"}


def served_names() -> set[str]:
    return set(STATIC_FILES.values()) | {f"sdk/{name}" for name in SDK_MODULES}


def test_every_module_the_page_or_a_site_imports_is_served_and_every_module_is_imported():
    page = re.search(r'<script type="module" src="/([\w.-]+)"', (STATIC_DIR / "index.html").read_text())[1]
    reachable, todo = set(), [page, "sdk/widgets.js"]  # what our page loads, what a site loads
    while todo:
        name = todo.pop()
        if name in reachable:
            continue
        assert name in served_names(), f"{name} is imported but not served"
        reachable.add(name)
        folder = name.rpartition("/")[0]
        todo += [f"{folder}/{found}".lstrip("/") for found in IMPORT.findall((STATIC_DIR / name).read_text())]
    modules = {str(path.relative_to(STATIC_DIR)) for path in STATIC_DIR.glob("**/*.js")}
    assert reachable == modules, f"modules nobody imports: {sorted(modules - reachable)}"


def test_the_page_has_nothing_inline_that_a_strict_policy_blocks():
    html = (STATIC_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "style attribute"
    assert not re.search(r"<style\b", html), "<style> element"
    for path in STATIC_DIR.glob("**/*.js"):
        source = path.read_text()
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function",
                          'setAttribute("style"', "cssText"):
            assert forbidden not in source, f"{path.name} uses {forbidden}"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(http, url: str):
    async with http.get(url) as response:
        await response.read()
        return response


async def test_every_answer_carries_the_security_headers(stack, http):
    answers = {
        "the page": "/",
        "a module": "/state.js",
        "the API": "/api/config",
        "an API error": "/api/me",
        "an unknown route": "/nothing-here",
        "the health check": "/healthz",
    }
    for what, path in answers.items():
        response = await _get(http, stack.base_url + path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, f"{what} ({path}, {response.status}): {name}"
    assert SECURITY_HEADERS["Content-Security-Policy"].startswith("default-src 'self';")


async def test_each_file_is_served_with_its_content_type_and_nothing_else_is_served(stack, http):
    for path, name in STATIC_FILES.items():
        response = await _get(http, stack.base_url + path)
        assert response.status == 200, path
        assert response.content_type == CONTENT_TYPES[(STATIC_DIR / name).suffix], path
    for path in ("/package.json", "/app.js", "/static/state.js", "/webgate/app.py", "/..%2fapp.py", "/state"):
        assert (await _get(http, stack.base_url + path)).status == 404, path


async def test_the_sdk_is_served_to_any_origin_gzipped_under_the_security_headers(stack, http):
    for name in SDK_MODULES:
        async with http.get(f"{stack.base_url}/sdk/{name}", headers={"Origin": "https://site.example",
                                                                       "Accept-Encoding": "gzip"}) as response:
            body = await response.read()  # aiohttp decompresses; the header says how it came
            assert response.status == 200, name
            assert response.content_type == "text/javascript", name
            assert response.headers["Access-Control-Allow-Origin"] == "*", name
            assert response.headers["Content-Encoding"] == "gzip", name
            assert body == (STATIC_DIR / "sdk" / name).read_bytes(), name
            for header, value in SECURITY_HEADERS.items():
                assert response.headers.get(header) == value, f"{name}: {header}"
    assert (await _get(http, f"{stack.base_url}/sdk/nothing.js")).status == 404
