"""The dns-persist-01 example validator in Python, built into a component with componentize-py.

The same validator as `examples/dns-persist-validator` (Rust), against the same WIT world
(`acmegate:plugin/challenge-validator@0.1.0`), to show that the plugin contract is
language-neutral: the domain owner publishes once, at `_validation-persist.<name>`, a TXT
record naming this CA and the ACME account allowed to get certificates for the name:

    _validation-persist.www.example.org. TXT "acmegate.invalid; accounturi=https://ca/acme/acct/1"

Every later order of that account for that name (and for `*.<name>`) is then validated from
the standing record. Configuration (JSON): `issuer_domain`. Grants: `dns = true`, and
`log = true` to see why a lookup failed.

This file only translates between the generated bindings (`wit_world`, made by componentize-py
at build time and never committed) and `records`, which holds the rules and is unit-tested
without the bindings.
"""

from typing import Optional

import wit_world
from componentize_py_types import Err
from wit_world.exports import validator
from wit_world.imports import dns, log, types

import records

VERSION = "0.1.0"

# Each gateway call runs in a fresh instance that gets `configure` first, so a module global
# lives exactly as long as one call's configuration. componentize-py instantiates the export
# classes separately, which is why the configuration is not kept on `self`.
_config: Optional[records.Config] = None


class Plugin(wit_world.exports.Plugin):
    """The calls every plugin exports: what it is, and its configuration."""

    def describe(self) -> types.PluginInfo:
        """Fixed, as the contract asks: the gateway calls it before `configure`."""
        return types.PluginInfo(
            kind=types.PluginKind_ChallengeValidator(
                types.ValidatorInfo(
                    challenge_types=["dns-persist-01"],
                    identifier_types=[types.IdentifierType.DNS],
                    new_order_policy=False,
                )
            ),
            name="dns-persist-validator-py",
            version=VERSION,
            description="A standing _validation-persist TXT record authorizes an account",
        )

    def configure(self, config: str) -> None:
        """Rejects a bad configuration with a message for the operator (a WIT `err`, so the
        gateway keeps the previous version instead of trapping)."""
        global _config
        try:
            _config = records.parse_config(config)
        except records.ConfigError as e:
            raise Err(str(e)) from None


class Validator(wit_world.exports.Validator):
    """Decides `dns-persist-01` challenges from the standing record."""

    def validate(self, request: validator.ChallengeRequest) -> validator.ValidationOutcome:
        if _config is None:
            # The same words as the Rust SDK's guard, for the same impossible-in-practice case.
            raise Err("plugin called before a successful configure")
        identifier = request.identifier
        name = records.record_name(identifier.value)
        try:
            found = dns.lookup(name, dns.RecordType.TXT)
        except Err as e:
            # The resolver could not answer: try again later rather than fail the client.
            log.log(log.Level.WARN, f"lookup of {name} failed: {_debug(e.value)}")
            return validator.ValidationOutcome_RetryLater(records.RETRY_AFTER_LOOKUP_FAILURE)
        if records.authorizes(_config, found, request.account):
            return validator.ValidationOutcome_Valid()
        return validator.ValidationOutcome_Invalid(
            types.Problem(
                kind=types.ProblemType.UNAUTHORIZED,
                detail=records.refusal(_config, name, found, request.account),
                identifier=identifier,
            )
        )

    def check_new_order(self, order: validator.OrderRequest) -> validator.PolicyDecision:
        """Never called: `describe` says `new_order_policy=False`. Allowing keeps the
        answer harmless should a gateway call it anyway."""
        return validator.PolicyDecision_Allow()


def _debug(error: types.CapabilityError) -> str:
    """A capability error as the Rust example logs it (`{e:?}` of wit-bindgen's enum, e.g.
    `CapabilityError::Failed("SERVFAIL")`), so both plugins write the same log line."""
    variant = type(error).__name__.replace("_", "::", 1)
    value = getattr(error, "value", None)
    return variant if value is None else f"{variant}({records.rust_debug_str(value)})"
