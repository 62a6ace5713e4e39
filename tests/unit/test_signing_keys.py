"""The token key set: its formats, what it publishes (never a private member),
rotation and pruning, and a file that several processes read."""

from __future__ import annotations

import json
import os
import unittest
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from joserfc.jwk import OKPKey

from myapp.signing_keys import (
    PUBLIC_MEMBERS,
    KeySet,
    KeySetError,
    KeySource,
    new_key_set,
    parse_key_set,
    write_key_set,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class TestFormats(unittest.TestCase):
    def test_key_set_when_written_and_read_back_is_the_same(self):
        for algorithm in ("EdDSA", "RS256"):
            with self.subTest(algorithm):
                key_set = new_key_set(algorithm).rotated(NOW)

                again = parse_key_set(key_set.to_json(), algorithm)

                self.assertEqual([k.kid for k in again.keys], [k.kid for k in key_set.keys])
                self.assertEqual(again.keys[1].retired_at, NOW)

    def test_pem_private_key_when_given_becomes_a_set_named_by_its_thumbprint(self):
        key = OKPKey.generate_key("Ed25519", private=True)

        key_set = parse_key_set(key.as_pem(private=True).decode(), "EdDSA")

        self.assertEqual(key_set.signer.kid, key.thumbprint())

    def test_public_set_when_published_holds_no_private_member(self):
        for algorithm in ("EdDSA", "RS256"):
            with self.subTest(algorithm):
                published = new_key_set(algorithm).rotated(NOW).public_jwks()

                for jwk in published["keys"]:
                    self.assertLessEqual(set(jwk), PUBLIC_MEMBERS)
                    self.assertEqual((jwk["alg"], jwk["use"]), (algorithm, "sig"))

    def test_key_set_when_unusable_refuses_naming_why(self):
        ed = new_key_set("EdDSA")
        public_only = json.dumps(ed.public_jwks())
        rotated = ed.rotated(NOW)
        retired_first = KeySet("EdDSA", rotated.keys[::-1]).to_json()
        cases = {
            "not a key at all": ("hello", "EdDSA", "not a PEM key or a JWK Set"),
            "a public key only": (public_only, "EdDSA", "private EdDSA key"),
            "a key of another algorithm": (ed.to_json(), "RS256", "private RS256 key"),
            "the shared-secret algorithm": (ed.to_json(), "HS256", "shared secret"),
            "a retired key first": (retired_first, "EdDSA", "first key signs"),
            "no key": ('{"keys": []}', "EdDSA", "holds no key"),
        }
        for case, (text, algorithm, message) in cases.items():
            with self.subTest(case), self.assertRaisesRegex(KeySetError, message):
                parse_key_set(text, algorithm)


class TestRotation(unittest.TestCase):
    def test_rotate_when_called_signs_with_a_new_key_and_keeps_the_old_for_checks(self):
        key_set = new_key_set("EdDSA")

        rotated = key_set.rotated(NOW)

        self.assertNotEqual(rotated.signer.kid, key_set.signer.kid)
        self.assertIsNone(rotated.signer.retired_at)
        self.assertEqual(rotated.find(key_set.signer.kid).retired_at, NOW)

    def test_prune_when_tokens_of_a_retired_key_may_live_keeps_it(self):
        rotated = new_key_set("EdDSA").rotated(NOW)

        self.assertEqual(len(rotated.pruned(NOW + 7 * DAY - timedelta(seconds=1), 7 * DAY).keys), 2)
        self.assertEqual(len(rotated.pruned(NOW + 7 * DAY, 7 * DAY).keys), 1)


class TestKeySource(unittest.TestCase):
    def setUp(self):
        folder = TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        self.path = Path(folder.name) / "jwks.json"
        write_key_set(self.path, new_key_set("EdDSA"))
        self.now = 1000.0
        self.source = KeySource(str(self.path), "EdDSA", clock=lambda: self.now)

    def rotate_on_disk(self) -> str:
        """What `flask keys rotate` does in another process; the new signer's kid."""
        rotated = self.source.current().rotated(NOW)
        write_key_set(self.path, rotated)
        os.utime(self.path, (1, 1))  # a new mtime, whatever the file system's resolution
        return rotated.signer.kid

    def test_file_when_rotated_by_another_process_is_read_again(self):
        new_kid = self.rotate_on_disk()
        self.now += 1.0

        self.assertEqual(self.source.current().signer.kid, new_kid)
        self.assertEqual(oct(self.path.stat().st_mode & 0o777), "0o600")

    def test_file_when_rotated_within_a_second_of_the_last_look_is_seen_a_second_later(self):
        first = self.source.current().signer.kid
        new_kid = self.rotate_on_disk()
        self.now += 0.5

        self.assertEqual(self.source.current().signer.kid, first)  # no stat yet
        self.now += 0.5
        self.assertEqual(self.source.current().signer.kid, new_kid)

    def test_reload_when_a_token_names_an_unknown_kid_reads_the_file_at_once(self):
        self.source.current()
        new_kid = self.rotate_on_disk()

        self.assertIsNotNone(self.source.reload().find(new_kid))

    def test_value_when_given_is_read_once(self):
        key_set = new_key_set("EdDSA")
        source = KeySource(key_set.to_json(), "EdDSA")

        self.assertIsNone(source.path)
        self.assertEqual(source.current().signer.kid, key_set.signer.kid)
