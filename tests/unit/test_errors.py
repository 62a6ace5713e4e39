"""myapp.errors: what an AppError says when it is read outside a response (a
traceback, a log line, ``pytest.raises(match=...)``)."""

from __future__ import annotations

import pytest

from myapp.errors import Conflict, NotFound


class TestAppError:
    @pytest.mark.parametrize(
        ("error", "text"),
        [
            (NotFound(), "The resource was not found."),
            (NotFound("No such user."), "No such user."),
            (Conflict(), "The request conflicts with the current state of the resource."),
        ],
    )
    def test_error_when_read_as_text_is_its_detail(self, error, text):
        assert (str(error), error.detail) == (text, text)
