"""Writing an email once, as plain text and as HTML with every value escaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Composed:
    subject: str
    text: str
    html: str


def compose(
    subject: str, paragraphs: Sequence[str], link: tuple[str, str] | None = None
) -> Composed:
    """An email of ``paragraphs``, and a link (label, url) after the first one.

    Values put into a message (an address a user typed, a username) are escaped in
    the HTML version: they must not become markup in anyone's mail client.
    """
    first, *rest = paragraphs
    text_parts = [first]
    html_parts = [f"<p>{escape(first)}</p>"]
    if link is not None:
        label, url = link
        text_parts.append(f"{label}:\n{url}")
        html_parts.append(f'<p><a href="{escape(url)}">{escape(label)}</a></p>')
    text_parts += rest
    html_parts += [f"<p>{escape(paragraph)}</p>" for paragraph in rest]
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><title>'
        f"{escape(subject)}</title></head><body>{''.join(html_parts)}</body></html>"
    )
    return Composed(subject, "\n\n".join(text_parts), html)


def security_notice(subject: str, what: str) -> Composed:
    """An email telling the owner that a way into their account changed."""
    return compose(
        subject,
        [
            what,
            "If it was not you, reset your password at once with the 'forgot "
            "password' link and contact support.",
        ],
    )
