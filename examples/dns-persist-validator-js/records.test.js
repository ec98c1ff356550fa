// Unit tests of the validator's rules (`records.js`), natively: `node --test` (Node.js 18 or
// later, no componentize-js). `app.js` imports the WIT world, which exists only inside the
// component, so it is covered by the gateway's end-to-end test (`dns_persist_example_js` in
// host/tests/e2e/plugin_validators.rs); the same cases as the Rust and Python examples' unit
// tests are checked here.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ConfigError,
  authorizes,
  parseConfig,
  parseRecord,
  recordName,
  refusal,
  rustDebugStr,
} from "./records.js";

const ACCOUNT = "https://ca/acme/acct/1";
const config = () => parseConfig('{"issuer_domain": "ca.example"}');

test("records authorize the named account only", () => {
  const c = config();
  const record = [`CA.example; accounturi=${ACCOUNT}; policy=wildcard`];
  assert.ok(authorizes(c, record, ACCOUNT));
  assert.ok(!authorizes(c, record, "https://ca/acme/acct/2"));
  assert.ok(!authorizes(c, [`elsewhere.example; accounturi=${ACCOUNT}`], ACCOUNT));
  assert.ok(!authorizes(c, ["ca.example"], ACCOUNT), "no account named");
  assert.ok(!authorizes(c, [], ACCOUNT));
});

test("parse trims and takes the first accounturi", () => {
  const r = parseRecord(`  ca.example ;policy=x; accounturi = ${ACCOUNT} ;accounturi=b`);
  assert.equal(r.issuer, "ca.example");
  // `accounturi =` has a space before `=`: not the key, as in the Rust example.
  assert.equal(r.account, "b");
  assert.equal(parseRecord(`ca.example;accounturi= ${ACCOUNT} `).account, ACCOUNT);
});

test("issuer compares ASCII case only", () => {
  assert.ok(authorizes(config(), [`CA.EXAMPLE; accounturi=${ACCOUNT}`], ACCOUNT));
  // U+212A KELVIN SIGN lowercases to `k` in Unicode, not in ASCII (RFC 4343).
  const k = parseConfig('{"issuer_domain": "k.example"}');
  assert.ok(!authorizes(k, [`\u212a.example; accounturi=${ACCOUNT}`], ACCOUNT));
});

test("wildcards use the base name", () => {
  assert.equal(recordName("*.example.org"), "_validation-persist.example.org");
  assert.equal(recordName("www.example.org"), "_validation-persist.www.example.org");
});

test("refusal names the record and the account", () => {
  const name = "_validation-persist.example.org";
  assert.equal(refusal(config(), name, [], ACCOUNT), `no TXT record at ${name}`);
  assert.equal(
    refusal(config(), name, ["other"], ACCOUNT),
    `no TXT record at ${name} names issuer "ca.example" with accounturi=${ACCOUNT}`,
  );
});

test("Rust debug quoting", () => {
  assert.equal(rustDebugStr('a"b\\c\n'), '"a\\"b\\\\c\\n"');
  assert.equal(rustDebugStr("\x01é"), '"\\u{1}é"');
});

test("configuration errors", () => {
  // The Rust example's messages (serde's words, without its line and column).
  const bad = {
    '{"issuer_domain": ""}': "issuer_domain must name this CA (e.g. its CAA issuer domain)",
    "{}": "invalid configuration: missing field `issuer_domain`",
    '{"issuer_domain": "a", "x": 1}':
      "invalid configuration: unknown field `x`, expected `issuer_domain`",
    '{"issuer_domain": 3}': "invalid configuration: issuer_domain must be a string",
    "[]": "invalid configuration: expected a JSON object",
  };
  for (const [text, message] of Object.entries(bad)) {
    assert.throws(() => parseConfig(text), new ConfigError(message), text);
  }
  assert.throws(() => parseConfig("{"), (e) => e instanceof ConfigError &&
    e.message.startsWith("invalid configuration: "));
});
