"""How users announces account changes: to the listener the app connected (auth's),
or to nobody when users runs alone."""

from __future__ import annotations

from flask import Flask

from myapp.users.events import NoListener, connect, listener_of


class TestListenerOf:
    def test_listener_of_when_nothing_connected_is_one_that_does_nothing(self):
        listener = listener_of(Flask(__name__))

        assert isinstance(listener, NoListener)
        assert listener.redeem_email_change("any") is None  # nothing issues such tokens

    def test_listener_of_when_connected_builds_a_new_one_per_use_case(self):
        app = Flask(__name__)
        built: list[object] = []
        connect(app, lambda: built.append(object()) or built[-1])

        first, second = listener_of(app), listener_of(app)

        assert built == [first, second]
        assert first is not second
