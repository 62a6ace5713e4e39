"""myapp.errors: what an AppError says when it is read outside a response (a
traceback, a log line, ``pytest.raises(match=...)``)."""

from __future__ import annotations

import pytest

from myapp.errors import Conflict, NotFound


class TestAppError:
    # Built in the test, not in the parameters: a mutation run sees only what the
    # test itself calls.
    @pytest.mark.parametrize(
        ("error_class", "given", "text"),
        [
            (NotFound, None, "The resource was not found."),
            (NotFound, "No such user.", "No such user."),
            (Conflict, None, "The request conflicts with the current state of the resource."),
        ],
    )
    def test_error_when_read_as_text_is_its_detail(self, error_class, given, text):
        error = error_class(given)

        assert (str(error), error.detail) == (text, text)
