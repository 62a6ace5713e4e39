"""What every app create_app builds has, checked on apps built here: the suite's
shared app is built once, before the tests that would otherwise notice."""

from __future__ import annotations

from pathlib import Path

import myapp
from myapp import create_app


class TestCreateApp:
    def test_create_app_when_no_instance_path_puts_it_beside_the_package(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.chdir(tmp_path)  # not where the project is

        app = create_app("testing")

        package = Path(myapp.__file__).resolve().parent
        assert Path(app.instance_path) == package.parent / "instance"

    def test_create_app_when_built_routes_no_static_folder(self):
        # An API: nothing to serve from a static folder, and no route to probe.
        app = create_app("testing")

        assert [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint == "static"] == []
