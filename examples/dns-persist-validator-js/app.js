// The dns-persist-01 example validator in JavaScript, built into a component with
// componentize-js.
//
// The same validator as `examples/dns-persist-validator` (Rust) and
// `examples/dns-persist-validator-py` (Python), against the same WIT world
// (`acmegate:plugin/challenge-validator@0.1.0`), to show that the plugin contract is
// language-neutral: the domain owner publishes once, at `_validation-persist.<name>`, a TXT
// record naming this CA and the ACME account allowed to get certificates for the name:
//
//     _validation-persist.www.example.org. TXT "acmegate.invalid; accounturi=https://ca/acme/acct/1"
//
// Every later order of that account for that name (and for `*.<name>`) is then validated from
// the standing record. Configuration (JSON): `issuer_domain`. Grants: `dns = true`, and
// `log = true` to see why a lookup failed.
//
// This file only translates between the WIT types and `records.js`, which holds the rules and
// is unit-tested with plain Node.js. The WIT mapping is componentize-js's: interfaces are
// imported as modules named by their WIT id and exported as objects named in camelCase; records
// are objects with camelCase fields; variants are `{ tag, val }`; enums are their WIT names; a
// `result` is the plain value when ok, and a thrown value when err (an imported call that
// answers err throws an Error whose `payload` is the err value).

import { lookup } from "acmegate:plugin/dns@0.1.0";
import { log } from "acmegate:plugin/log@0.1.0";

import {
  ConfigError,
  RETRY_AFTER_LOOKUP_FAILURE,
  authorizes,
  parseConfig,
  recordName,
  refusal,
  rustDebugStr,
} from "./records.js";

const VERSION = "0.1.0";

// Each gateway call runs in a fresh instance that gets `configure` first, so a module global
// lives exactly as long as one call's configuration.
let config = null;

/** The calls every plugin exports: what it is, and its configuration. */
export const plugin = {
  /** Fixed, as the contract asks: the gateway calls it before `configure`. */
  describe() {
    return {
      kind: {
        tag: "challenge-validator",
        val: {
          challengeTypes: ["dns-persist-01"],
          identifierTypes: ["dns"],
          newOrderPolicy: false,
        },
      },
      name: "dns-persist-validator-js",
      version: VERSION,
      description: "A standing _validation-persist TXT record authorizes an account",
    };
  },

  /** Rejects a bad configuration with a message for the operator (a WIT `err`, so the gateway
   * keeps the previous version instead of trapping). */
  configure(text) {
    try {
      config = parseConfig(text);
    } catch (e) {
      if (e instanceof ConfigError) throw e.message;
      throw e;
    }
  },
};

/** Decides `dns-persist-01` challenges from the standing record. */
export const validator = {
  validate(request) {
    if (config === null) {
      // The same words as the Rust SDK's guard, for the same impossible-in-practice case.
      throw "plugin called before a successful configure";
    }
    const identifier = request.identifier;
    const name = recordName(identifier.value);
    let found;
    try {
      found = lookup(name, "txt");
    } catch (e) {
      // The resolver could not answer: try again later rather than fail the client.
      log("warn", `lookup of ${name} failed: ${debug(e.payload)}`);
      return { tag: "retry-later", val: RETRY_AFTER_LOOKUP_FAILURE };
    }
    if (authorizes(config, found, request.account)) {
      return { tag: "valid" };
    }
    return {
      tag: "invalid",
      val: {
        kind: "unauthorized",
        detail: refusal(config, name, found, request.account),
        identifier,
      },
    };
  },

  /** Never called: `describe` says `newOrderPolicy: false`. Allowing keeps the answer harmless
   * should a gateway call it anyway. */
  checkNewOrder(_order) {
    return { tag: "allow" };
  },
};

/** A capability error as the Rust example logs it (`{e:?}` of wit-bindgen's enum, e.g.
 * `CapabilityError::Failed("SERVFAIL")`), so all three plugins write the same log line. */
function debug(error) {
  if (error === undefined || error === null || typeof error.tag !== "string") {
    return String(error);
  }
  const variant =
    "CapabilityError::" +
    error.tag.replace(/(^|-)([a-z])/g, (_, _dash, letter) => letter.toUpperCase());
  return error.val === undefined ? variant : `${variant}(${rustDebugStr(String(error.val))})`;
}
