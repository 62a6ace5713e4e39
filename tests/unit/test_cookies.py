"""The origin comparison behind cookie transport's Origin check."""

from __future__ import annotations

import pytest

from myapp.auth.cookies import origin_of


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Accounts.Example.com/account?x=1", "https://accounts.example.com"),
        ("https://accounts.example.com:443", "https://accounts.example.com"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("http://localhost:80", "http://localhost"),
        ("https://a.example:8443/", "https://a.example:8443"),
        ("null", ""),
        ("", ""),
        ("/relative/path", ""),
        # A scheme without a host is no origin at all.
        ("https://", ""),
        ("https:///account", ""),
    ],
)
def test_origin_of_when_given_a_url_is_scheme_host_and_non_default_port(url, origin):
    assert origin_of(url) == origin
