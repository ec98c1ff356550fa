"""Unit tests of the validator's rules (`records`), natively: `python3 -m unittest -v`.

`app.py` needs the bindings componentize-py generates at build time, so it is covered by the
gateway's end-to-end test (`dns_persist_example_py` in host/tests/e2e/plugin_validators.rs);
the same cases as the Rust example's unit test are checked here.
"""

import unittest

import records

ACCOUNT = "https://ca/acme/acct/1"


def config() -> records.Config:
    return records.parse_config('{"issuer_domain": "ca.example"}')


class RecordsTest(unittest.TestCase):
    def test_records_authorize_the_named_account_only(self):
        c = config()
        record = [f"CA.example; accounturi={ACCOUNT}; policy=wildcard"]
        self.assertTrue(records.authorizes(c, record, ACCOUNT))
        self.assertFalse(records.authorizes(c, record, "https://ca/acme/acct/2"))
        other_ca = [f"elsewhere.example; accounturi={ACCOUNT}"]
        self.assertFalse(records.authorizes(c, other_ca, ACCOUNT))
        self.assertFalse(records.authorizes(c, ["ca.example"], ACCOUNT), "no account named")
        self.assertFalse(records.authorizes(c, [], ACCOUNT))

    def test_parse_trims_and_takes_the_first_accounturi(self):
        r = records.parse(f"  ca.example ;policy=x; accounturi = {ACCOUNT} ;accounturi=b")
        self.assertEqual(r.issuer, "ca.example")
        # `accounturi =` has a space before `=`: not the key, as in the Rust example.
        self.assertEqual(r.account, "b")
        self.assertEqual(records.parse(f"ca.example;accounturi= {ACCOUNT} ").account, ACCOUNT)

    def test_issuer_compares_ascii_case_only(self):
        c = records.parse_config('{"issuer_domain": "ca.example"}')
        self.assertTrue(records.authorizes(c, [f"CA.EXAMPLE; accounturi={ACCOUNT}"], ACCOUNT))
        # U+212A KELVIN SIGN lowercases to `k` in Unicode, not in ASCII (RFC 4343).
        k = records.parse_config('{"issuer_domain": "k.example"}')
        self.assertFalse(records.authorizes(k, [f"\u212a.example; accounturi={ACCOUNT}"], ACCOUNT))

    def test_wildcards_use_the_base_name(self):
        self.assertEqual(records.record_name("*.example.org"), "_validation-persist.example.org")
        self.assertEqual(
            records.record_name("www.example.org"), "_validation-persist.www.example.org"
        )

    def test_refusal_names_the_record_and_the_account(self):
        c = config()
        name = "_validation-persist.example.org"
        self.assertEqual(records.refusal(c, name, [], ACCOUNT), f"no TXT record at {name}")
        self.assertEqual(
            records.refusal(c, name, ["other"], ACCOUNT),
            f'no TXT record at {name} names issuer "ca.example" with accounturi={ACCOUNT}',
        )

    def test_rust_debug_quoting(self):
        self.assertEqual(records.rust_debug_str('a"b\\c\n'), '"a\\"b\\\\c\\n"')
        self.assertEqual(records.rust_debug_str("\x01é"), '"\\u{1}é"')

    def test_configuration_errors(self):
        # The Rust example's messages (serde's words, without its line and column).
        bad = {
            '{"issuer_domain": ""}': "issuer_domain must name this CA (e.g. its CAA issuer domain)",
            "{}": "invalid configuration: missing field `issuer_domain`",
            '{"issuer_domain": "a", "x": 1}':
                "invalid configuration: unknown field `x`, expected `issuer_domain`",
            '{"issuer_domain": 3}': "invalid configuration: issuer_domain must be a string",
            "[]": "invalid configuration: expected a JSON object",
        }
        for text, message in bad.items():
            with self.subTest(text=text):
                with self.assertRaises(records.ConfigError) as caught:
                    records.parse_config(text)
                self.assertEqual(str(caught.exception), message)
        with self.assertRaises(records.ConfigError) as caught:
            records.parse_config("{")
        self.assertTrue(str(caught.exception).startswith("invalid configuration: "))


if __name__ == "__main__":
    unittest.main()
