"""Second-factor primitives: RFC 6238 codes, the time window, replay, recovery codes."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from myapp.auth.factors import (
    RECOVERY_ALPHABET,
    RECOVERY_CODE_COUNT,
    RECOVERY_CODE_LENGTH,
    matching_step,
    new_recovery_codes,
    new_totp_secret,
    normalise_recovery_code,
    provisioning_uri,
    qr_svg,
    recovery_code_hash,
    time_step,
    totp_code,
)

# RFC 6238 appendix B: the ASCII seed "12345678901234567890", SHA-1 (8-digit
# values there; ours are their last 6 digits).
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
NOW = datetime(2026, 6, 1, 12, 0, 10, tzinfo=UTC)


class TestTotp:
    @pytest.mark.parametrize(
        ("unix_time", "expected"),
        [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")],
    )
    def test_code_when_computed_matches_rfc_6238_test_vectors(self, unix_time, expected):
        step = time_step(datetime.fromtimestamp(unix_time, UTC))

        assert totp_code(RFC_SECRET, step) == expected

    @pytest.mark.parametrize(
        ("offset", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
    )
    def test_matching_step_when_code_near_now_accepts_one_step_either_side(self, offset, accepted):
        step = time_step(NOW) + offset

        found = matching_step(RFC_SECRET, totp_code(RFC_SECRET, step), NOW, after=None)

        assert found == (step if accepted else None)

    @pytest.mark.parametrize(("after_offset", "accepted"), [(-1, True), (0, False), (1, False)])
    def test_matching_step_when_a_step_was_used_refuses_it_and_older_ones(
        self, after_offset, accepted
    ):
        step = time_step(NOW)

        found = matching_step(
            RFC_SECRET, totp_code(RFC_SECRET, step), NOW, after=step + after_offset
        )

        assert (found is not None) is accepted

    def test_matching_step_when_code_wrong_returns_none(self):
        codes_near = {totp_code(RFC_SECRET, time_step(NOW) + o) for o in (-1, 0, 1)}
        wrong = next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in codes_near)

        assert matching_step(RFC_SECRET, wrong, NOW, after=None) is None

    def test_new_secret_when_made_is_160_random_bits_of_base32(self):
        secrets = {new_totp_secret() for _ in range(20)}

        assert len(secrets) == 20
        assert all(
            len(s) == 32 and set(s) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for s in secrets
        )

    def test_provisioning_uri_when_built_names_issuer_account_and_parameters(self):
        uri = provisioning_uri(RFC_SECRET, "ada@example.com", "myapp")

        assert uri.startswith("otpauth://totp/myapp:ada%40example.com?")
        assert f"secret={RFC_SECRET}" in uri and "issuer=myapp" in uri

    def test_qr_svg_when_drawn_is_an_svg_document_without_script(self):
        svg = qr_svg(provisioning_uri(RFC_SECRET, "ada@example.com", "myapp"))

        root = ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert "script" not in svg.lower()


class TestRecoveryCodes:
    def test_codes_when_made_are_ten_distinct_groups_of_the_alphabet(self):
        codes = new_recovery_codes()

        assert len(codes) == len(set(codes)) == RECOVERY_CODE_COUNT == 10
        for code in codes:
            groups = code.split("-")
            assert [len(g) for g in groups] == [4, 4, 4]
            assert set("".join(groups)) <= set(RECOVERY_ALPHABET)

    def test_alphabet_when_read_has_no_look_alikes_and_codes_carry_50_bits(self):
        assert not set("0O1IL") & set(RECOVERY_ALPHABET)
        assert RECOVERY_CODE_LENGTH * math.log2(len(set(RECOVERY_ALPHABET))) >= 50

    @pytest.mark.parametrize(
        "typed", ["7kq4-mz2h-xwt9", "7KQ4MZ2HXWT9", " 7KQ4 MZ2H XWT9 ", "7kq4_mz2h.xwt9"]
    )
    def test_normalise_when_typed_any_way_gives_the_stored_form(self, typed):
        assert normalise_recovery_code(typed) == "7KQ4MZ2HXWT9"

    def test_hash_when_same_code_of_two_users_differs(self):
        assert recovery_code_hash(1, "7KQ4MZ2HXWT9") != recovery_code_hash(2, "7KQ4MZ2HXWT9")
        assert len(recovery_code_hash(1, "7KQ4MZ2HXWT9")) == 64
