"""Every email is plain text and HTML; values put into the HTML are escaped."""

from __future__ import annotations

from myapp.outbox.compose import compose


class TestCompose:
    def test_compose_when_given_paragraphs_and_link_writes_both_versions(self):
        email = compose("Hello", ["First.", "Last."], link=("Open", "https://x.example/?a=1&b=2"))

        assert email.subject == "Hello"
        assert email.text == "First.\n\nOpen:\nhttps://x.example/?a=1&b=2\n\nLast."
        assert email.html == (
            '<!doctype html><html><head><meta charset="utf-8"><title>Hello</title></head>'
            "<body><p>First.</p>"
            '<p><a href="https://x.example/?a=1&amp;b=2">Open</a></p>'
            "<p>Last.</p></body></html>"
        )

    def test_compose_when_values_hold_markup_escapes_them_in_html_only(self):
        email = compose('Hi <b>"you"</b>', ["Changed to <script>alert(1)</script>."])

        assert "<script>" not in email.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
        assert "<title>Hi &lt;b&gt;&quot;you&quot;&lt;/b&gt;</title>" in email.html
        assert email.text == "Changed to <script>alert(1)</script>."
