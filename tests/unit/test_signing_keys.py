"""The token key set: its formats, what it publishes (never a private member),
rotation and pruning, and a file that several processes read."""

from __future__ import annotations

import json
import os
import re
import unittest
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from unittest import mock

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

    def test_single_jwk_when_given_is_a_set_of_that_one_key(self):
        key = OKPKey.generate_key("Ed25519", private=True)

        key_set = parse_key_set(json.dumps(key.as_dict(private=True)), "EdDSA")

        self.assertEqual([k.kid for k in key_set.keys], [key.thumbprint()])

    def test_key_set_when_written_names_each_key_and_its_algorithm_for_the_operator(self):
        key_set = new_key_set("EdDSA").rotated(NOW)

        written = json.loads(key_set.to_json())["keys"]

        # An operator matches a token's kid, or the JWKS, against this file by eye.
        self.assertEqual([e["kid"] for e in written], [k.kid for k in key_set.keys])
        self.assertEqual([e["alg"] for e in written], ["EdDSA", "EdDSA"])

    def test_new_key_when_rs256_is_3072_bits(self):
        # 2048 (the library's default) is NIST's minimum only until 2030.
        key = new_key_set("RS256").signer

        self.assertEqual(key.public_key.key_size, 3072)

    def test_new_key_when_algorithm_signs_with_a_shared_secret_refuses_naming_it(self):
        with self.assertRaisesRegex(KeySetError, "HS256"):
            new_key_set("HS256")

    def test_kid_when_the_operator_named_the_key_is_kept_through_write_and_read(self):
        (entry,) = json.loads(new_key_set("EdDSA").to_json())["keys"]
        named = {**entry, "kid": "2026-05-signing"}

        key_set = parse_key_set(json.dumps({"keys": [named]}), "EdDSA")
        again = parse_key_set(key_set.to_json(), "EdDSA")

        self.assertEqual(key_set.signer.kid, "2026-05-signing")
        self.assertEqual(again.signer.kid, "2026-05-signing")
        self.assertEqual(again.public_jwks()["keys"][0]["kid"], "2026-05-signing")

    def test_key_set_when_unusable_refuses_naming_the_setting_and_why(self):
        ed = new_key_set("EdDSA")
        public_only = json.dumps(ed.public_jwks())
        rotated = ed.rotated(NOW)
        retired_first = KeySet("EdDSA", rotated.keys[::-1]).to_json()
        unreadable = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "d": "!"}]})
        # The operator must learn which setting to fix: every message names it.
        setting = "^JWT_PRIVATE_KEYS"
        cases = {
            "not a key at all": ("hello", "EdDSA", f"{setting} is not a PEM key"),
            "a public key only": (
                public_only,
                "EdDSA",
                f"{setting}: every key must be a private EdDSA key",
            ),
            "a key of another algorithm": (
                ed.to_json(),
                "RS256",
                f"{setting}: every key must be a private RS256 key",
            ),
            "a key that cannot be read": (
                unreadable,
                "EdDSA",
                f"{setting}: a key cannot be read: ",
            ),
            "the shared-secret algorithm": (
                ed.to_json(),
                "HS256",
                "^JWT_ALGORITHM HS256 signs with a shared secret",
            ),
            "a retired key first": (
                retired_first,
                "EdDSA",
                f"{setting}: the first key signs, and it is retired$",
            ),
            "no key": ('{"keys": []}', "EdDSA", f"{setting} holds no key$"),
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

    def test_rotate_when_called_again_keeps_every_earlier_key_until_pruned(self):
        first = new_key_set("EdDSA")
        second = first.rotated(NOW)

        third = second.rotated(NOW + DAY)

        self.assertEqual([k.kid for k in third.keys[1:]], [second.signer.kid, first.signer.kid])
        self.assertEqual([k.retired_at for k in third.keys], [None, NOW + DAY, NOW])

    def test_prune_when_tokens_of_a_retired_key_may_live_keeps_it(self):
        rotated = new_key_set("EdDSA").rotated(NOW)

        self.assertEqual(len(rotated.pruned(NOW + 7 * DAY - timedelta(seconds=1), 7 * DAY).keys), 2)
        self.assertEqual(len(rotated.pruned(NOW + 7 * DAY, 7 * DAY).keys), 1)

    def test_prune_when_done_leaves_a_set_that_still_publishes_its_algorithm(self):
        pruned = new_key_set("RS256").rotated(NOW).pruned(NOW + 7 * DAY, 7 * DAY)

        self.assertEqual([jwk["alg"] for jwk in pruned.public_jwks()["keys"]], ["RS256"])
        self.assertEqual(parse_key_set(pruned.to_json(), "RS256").signer.kid, pruned.signer.kid)


class TestWriteKeySet(unittest.TestCase):
    def setUp(self):
        folder = TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        self.folder = Path(folder.name)
        self.path = self.folder / "jwks.json"

    def test_write_when_done_renames_a_draft_from_the_same_folder(self):
        # A rename is atomic only within one file system: the draft sits next to
        # the file (a secret mount is often a file system of its own).
        with mock.patch("myapp.signing_keys.os.replace", wraps=os.replace) as replace:
            write_key_set(self.path, new_key_set("EdDSA"))

        ((draft, target), _) = replace.call_args
        self.assertEqual((Path(draft).parent, Path(target)), (self.folder, self.path))
        self.assertEqual([p.name for p in self.folder.iterdir()], ["jwks.json"])

    def test_write_when_it_fails_leaves_the_old_file_and_no_draft(self):
        old = new_key_set("EdDSA")
        write_key_set(self.path, old)
        broken = mock.Mock(spec=KeySet)
        broken.to_json.side_effect = OSError("disk full")

        with self.assertRaisesRegex(OSError, "disk full"):
            write_key_set(self.path, broken)

        self.assertEqual([p.name for p in self.folder.iterdir()], ["jwks.json"])
        self.assertEqual(parse_key_set(self.path.read_text(), "EdDSA").signer.kid, old.signer.kid)


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

    def test_file_when_unchanged_is_not_read_again(self):
        with mock.patch("myapp.signing_keys.parse_key_set", wraps=parse_key_set) as parse:
            for _ in range(3):
                self.source.current()
                self.now += 1.0

        self.assertEqual(parse.call_count, 1)

    def test_file_when_missing_refuses_naming_the_setting_and_the_file(self):
        self.path.unlink()

        with self.assertRaisesRegex(
            KeySetError, f"^JWT_PRIVATE_KEYS file {re.escape(str(self.path))}: "
        ):
            self.source.current()

    def test_reload_when_a_token_names_an_unknown_kid_reads_the_file_at_once(self):
        self.source.current()
        new_kid = self.rotate_on_disk()

        self.assertIsNotNone(self.source.reload().find(new_kid))

    def test_value_when_given_is_read_once(self):
        key_set = new_key_set("EdDSA")
        source = KeySource(key_set.to_json(), "EdDSA")

        self.assertIsNone(source.path)
        self.assertEqual(source.current().signer.kid, key_set.signer.kid)
