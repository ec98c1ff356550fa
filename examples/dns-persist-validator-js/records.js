// The rules of the dns-persist-01 validator, kept apart from the component's imports.
//
// This module imports nothing from the WIT world, so `node --test` tests it with plain Node.js,
// while `app.js` only translates between these functions and the WIT types. It mirrors
// `examples/dns-persist-validator/src/lib.rs` (Rust) and `../dns-persist-validator-py/records.py`
// (Python) rule for rule and message for message: the point of this example is that the
// contract does not care which language keeps it.

/** Where the standing record lives, under the base name (RFC 8555 §8.4 uses `_acme-challenge`
 * for per-order tokens; this type keeps a separate label so both can coexist). */
export const RECORD_PREFIX = "_validation-persist.";

/** Seconds before the gateway asks again when the resolver could not answer: a resolver hiccup
 * must not fail the client's authorization. */
export const RETRY_AFTER_LOOKUP_FAILURE = 5;

/** The operator's configuration is unusable; the message says why, for the operator. */
export class ConfigError extends Error {}

/**
 * Parses the JSON the gateway passes to `configure` into `{ issuerDomain }`.
 *
 * Strict like the Rust example's `#[serde(deny_unknown_fields)]`: a misspelt key is an error at
 * load, not a silently ignored setting.
 */
export function parseConfig(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`invalid configuration: ${e.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError("invalid configuration: expected a JSON object");
  }
  const unknown = Object.keys(value)
    .filter((key) => key !== "issuer_domain")
    .sort();
  if (unknown.length > 0) {
    throw new ConfigError(
      `invalid configuration: unknown field \`${unknown[0]}\`, expected \`issuer_domain\``,
    );
  }
  if (!("issuer_domain" in value)) {
    throw new ConfigError("invalid configuration: missing field `issuer_domain`");
  }
  const issuerDomain = value.issuer_domain;
  if (typeof issuerDomain !== "string") {
    throw new ConfigError("invalid configuration: issuer_domain must be a string");
  }
  if (issuerDomain === "") {
    throw new ConfigError("issuer_domain must name this CA (e.g. its CAA issuer domain)");
  }
  return { issuerDomain };
}

/** Splits a TXT record's text into the issuer and the first `accounturi` value (other keys
 * are ignored, so records carrying later additions such as `policy=wildcard` still match). */
export function parseRecord(text) {
  const parts = text.split(";").map((part) => part.trim());
  let account = null;
  for (const part of parts.slice(1)) {
    const eq = part.indexOf("=");
    if (eq >= 0 && part.slice(0, eq) === "accounturi") {
      account = part.slice(eq + 1).trim();
      break;
    }
  }
  return { issuer: parts[0], account };
}

/** Domain names compare case-insensitively in ASCII only (RFC 4343), as Rust's
 * `eq_ignore_ascii_case` does; `toLowerCase` would also fold non-ASCII letters. */
function sameDomain(a, b) {
  const fold = (s) => s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
  return fold(a) === fold(b);
}

/** Whether one of `records` names this CA and authorizes `account`. */
export function authorizes(config, records, account) {
  return records
    .map(parseRecord)
    .some((r) => sameDomain(r.issuer, config.issuerDomain) && r.account === account);
}

/** The name holding the standing record. A wildcard's authorization is for its base domain
 * (RFC 8555 §7.1.3), so `*.example.org` is covered by the record of `example.org`. */
export function recordName(identifier) {
  const base = identifier.startsWith("*.") ? identifier.slice(2) : identifier;
  return RECORD_PREFIX + base;
}

/** A string quoted as Rust's `{:?}` quotes it, so the client-facing detail is the same as the
 * Rust example's (`JSON.stringify` differs for control characters and non-ASCII). */
export function rustDebugStr(text) {
  let out = '"';
  for (const ch of text) {
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\0") out += "\\0";
    else if (!printable(ch)) {
      out += `\\u{${ch.codePointAt(0).toString(16)}}`;
    } else out += ch;
  }
  return out + '"';
}

/** Code point ranges that Python's `str.isprintable` refuses (what the Python example escapes):
 * controls, separators other than the space, format characters, surrogates and private use
 * (Unicode 14, Python 3.11's tables).
 * Written out because the component's engine has no Unicode property tables (`\p{..}` does not
 * compile there); unassigned code points, which need those tables, are printed as they are. */
const UNPRINTABLE = [
  [0x0, 0x1f], [0x7f, 0xa0], [0xad, 0xad], [0x600, 0x605], [0x61c, 0x61c], [0x6dd, 0x6dd],
  [0x70f, 0x70f], [0x890, 0x891], [0x8e2, 0x8e2], [0x1680, 0x1680], [0x180e, 0x180e],
  [0x2000, 0x200f], [0x2028, 0x202f], [0x205f, 0x2064], [0x2066, 0x206f], [0x3000, 0x3000],
  [0xd800, 0xf8ff], [0xfeff, 0xfeff], [0xfff9, 0xfffb], [0x110bd, 0x110bd], [0x110cd, 0x110cd],
  [0x13430, 0x13438], [0x1bca0, 0x1bca3], [0x1d173, 0x1d17a], [0xe0001, 0xe0001],
  [0xe0020, 0xe007f], [0xf0000, 0x10ffff],
];

function printable(ch) {
  const code = ch.codePointAt(0);
  return !UNPRINTABLE.some(([low, high]) => code >= low && code <= high);
}

/** The `unauthorized` problem's detail: the client learns which record to publish. */
export function refusal(config, name, records, account) {
  if (records.length === 0) {
    return `no TXT record at ${name}`;
  }
  return (
    `no TXT record at ${name} names issuer ${rustDebugStr(config.issuerDomain)} ` +
    `with accounturi=${account}`
  );
}
