// A chat notifier in JavaScript, built into a component with componentize-js: posts each
// certificate event to a Slack, Mattermost or Microsoft Teams incoming webhook, in the payload
// that system takes (`format`). See `messages.js` for the configuration and the payloads.
//
// Grants: `http_hosts` with the webhook's host (and `http_plain` / `http_private` for an
// internal plain-HTTP one). The WIT mapping is componentize-js's: see
// `../dns-persist-validator-js/app.js`.

import { send } from "acmegate:plugin/http@0.1.0";

import { ConfigError, FORMATS, parseConfig, payload, wanted } from "./messages.js";

const VERSION = "0.1.0";

// Each gateway call runs in a fresh instance that gets `configure` first.
let config = null;

export const plugin = {
  describe() {
    return {
      kind: { tag: "notifier", val: { channels: ["chat"] } },
      name: "chat-notifier-js",
      version: VERSION,
      description: `Posts certificate events to a chat webhook (${FORMATS.join(", ")})`,
    };
  },

  configure(text) {
    try {
      config = parseConfig(text);
    } catch (e) {
      if (e instanceof ConfigError) throw e.message;
      throw e;
    }
  },
};

export const notifications = {
  notify(event) {
    if (config === null) {
      throw "plugin called before a successful configure";
    }
    if (!wanted(config, event.severity)) {
      return;
    }
    const body = new TextEncoder().encode(JSON.stringify(payload(config, event)));
    let response;
    try {
      response = send({
        method: "POST",
        url: config.url,
        headers: [["content-type", "application/json"]],
        body,
        timeoutMs: config.timeoutMs,
      });
    } catch (e) {
      // The gateway logs the error and counts it in the plugin's status (no retry).
      const why = e.payload ? `${e.payload.tag}${e.payload.val ? `: ${e.payload.val}` : ""}` : e;
      throw `chat webhook unreachable: ${why}`;
    }
    if (response.status < 200 || response.status > 299) {
      throw `chat webhook answered ${response.status}`;
    }
  },
};
