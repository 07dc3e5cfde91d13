"""The demo's Prefect UI can reach its API: `/ui-settings`, which the UI reads first, names the server it
came from, and the API answers at that URL."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from flows.cli.demo import isolated_env, prefect_server


def test_the_demos_prefect_server_tells_its_ui_its_own_api_url_and_answers_there(tmp_path: Path) -> None:
    # The demo's own start, in the environment the demo process has (`eia demo` re-executes itself in it).
    with prefect_server(tmp_path, isolated_env(os.environ, tmp_path)) as api_url:
        ui_root = api_url.removesuffix("/api")
        settings = httpx.get(f"{ui_root}/ui-settings", timeout=10).json()
        health = httpx.get(f"{settings['api_url']}/health", timeout=10)

    assert api_url.startswith("http://127.0.0.1:") and api_url != "http://127.0.0.1:4200/api"
    assert settings["api_url"] == api_url
    assert (health.status_code, health.json()) == (200, True)
