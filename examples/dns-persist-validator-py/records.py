"""The rules of the dns-persist-01 validator, kept apart from the component bindings.

This module imports nothing that componentize-py generates, so `python3 -m unittest` tests it
on any Python 3, while `app.py` only translates between these functions and the WIT types.
It mirrors `examples/dns-persist-validator/src/lib.rs` rule for rule and message for message:
the point of this example is that the contract does not care which language keeps it.
"""

import json
from dataclasses import dataclass
from typing import Iterable, Optional

RECORD_PREFIX = "_validation-persist."
"""Where the standing record lives, under the base name (RFC 8555 §8.4 uses `_acme-challenge`
for per-order tokens; this type keeps a separate label so both can coexist)."""

RETRY_AFTER_LOOKUP_FAILURE = 5
"""Seconds before the gateway asks again when the resolver could not answer: a resolver hiccup
must not fail the client's authorization."""


class ConfigError(ValueError):
    """The operator's configuration is unusable; the text says why, for the operator."""


@dataclass(frozen=True)
class Config:
    """The plugin's configuration: `issuer_domain`, the name this CA goes by in the records
    (like a CAA issuer domain)."""

    issuer_domain: str


def parse_config(text: str) -> Config:
    """Parses the JSON the gateway passes to `configure`.

    Strict like the Rust example's `#[serde(deny_unknown_fields)]`: a misspelt key is an error
    at load, not a silently ignored setting.
    """
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"invalid configuration: {e}") from None
    if not isinstance(value, dict):
        raise ConfigError("invalid configuration: expected a JSON object")
    unknown = sorted(set(value) - {"issuer_domain"})
    if unknown:
        raise ConfigError(
            f"invalid configuration: unknown field `{unknown[0]}`, expected `issuer_domain`"
        )
    if "issuer_domain" not in value:
        raise ConfigError("invalid configuration: missing field `issuer_domain`")
    issuer_domain = value["issuer_domain"]
    if not isinstance(issuer_domain, str):
        raise ConfigError("invalid configuration: issuer_domain must be a string")
    if not issuer_domain:
        raise ConfigError("issuer_domain must name this CA (e.g. its CAA issuer domain)")
    return Config(issuer_domain=issuer_domain)


@dataclass(frozen=True)
class Record:
    """One parsed record: `<issuer-domain>; accounturi=<URL>; ...` (other keys ignored, so
    records carrying later additions such as `policy=wildcard` still match)."""

    issuer: str
    account: Optional[str]


def parse(text: str) -> Record:
    """Splits a TXT record's text into the issuer and the first `accounturi` value."""
    parts = [part.strip() for part in text.split(";")]
    issuer = parts[0]
    account = None
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep and key == "accounturi":
            account = value.strip()
            break
    return Record(issuer=issuer, account=account)


def _same_domain(a: str, b: str) -> bool:
    """Domain names compare case-insensitively in ASCII only (RFC 4343), as Rust's
    `eq_ignore_ascii_case` does; `str.lower` would also fold non-ASCII letters."""
    return a.encode().lower() == b.encode().lower()


def authorizes(config: Config, records: Iterable[str], account: str) -> bool:
    """Whether one of `records` names this CA and authorizes `account`."""
    return any(
        _same_domain(r.issuer, config.issuer_domain) and r.account == account
        for r in map(parse, records)
    )


def record_name(identifier: str) -> str:
    """The name holding the standing record. A wildcard's authorization is for its base
    domain (RFC 8555 §7.1.3), so `*.example.org` is covered by the record of `example.org`."""
    base = identifier[2:] if identifier.startswith("*.") else identifier
    return RECORD_PREFIX + base


def rust_debug_str(text: str) -> str:
    """A string quoted as Rust's `{:?}` quotes it, so the client-facing detail is the same
    as the Rust example's (`json.dumps` differs for control characters and non-ASCII)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif not ch.isprintable():
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def refusal(config: Config, name: str, records: list, account: str) -> str:
    """The `unauthorized` problem's detail: the client learns which record to publish."""
    if not records:
        return f"no TXT record at {name}"
    return (
        f"no TXT record at {name} names issuer {rust_debug_str(config.issuer_domain)} "
        f"with accounturi={account}"
    )
