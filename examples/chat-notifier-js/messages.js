// The rules of the chat notifier, kept apart from the component's imports: configuration, and
// the payload each chat system's incoming webhook takes. Imports nothing from the WIT world, so
// `node --test` tests it with plain Node.js; `app.js` only translates the WIT types.

/** The operator's configuration is unusable; the message says why, for the operator. */
export class ConfigError extends Error {}

/** Payload formats: Slack's incoming webhooks (mrkdwn: `*bold*`), Mattermost's (Slack-compatible
 * fields, but standard Markdown: `**bold**`), and Microsoft Teams' Workflows webhooks (an
 * Adaptive Card in a `message`; the older Office 365 connectors are retired). */
export const FORMATS = ["slack", "mattermost", "teams"];

const SEVERITIES = ["info", "warning", "critical"];
const KEYS = ["url", "format", "min_severity", "timeout_ms", "username", "channel"];

/**
 * Parses the JSON the gateway passes to `configure`: `url` (required, http or https),
 * `format` (`slack`, the default, `mattermost` or `teams`), `min_severity` (`info`, the default,
 * `warning` or `critical`), `timeout_ms` (default 5000), and for Slack and Mattermost optional
 * `username` and `channel` overrides (webhooks that allow them honour them). Unknown keys are
 * errors, so a misspelt one fails the load instead of being ignored.
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
  const unknown = Object.keys(value).filter((key) => !KEYS.includes(key));
  if (unknown.length > 0) {
    throw new ConfigError(
      `invalid configuration: unknown field \`${unknown[0]}\`, expected one of ${KEYS.join(", ")}`,
    );
  }
  const url = value.url;
  if (typeof url !== "string" || !/^https?:\/\/[^/]/.test(url)) {
    throw new ConfigError(`url ${JSON.stringify(url)} is not an http(s) URL`);
  }
  const format = value.format ?? "slack";
  if (!FORMATS.includes(format)) {
    throw new ConfigError(`format ${JSON.stringify(format)} is not one of ${FORMATS.join(", ")}`);
  }
  const minSeverity = value.min_severity ?? "info";
  if (!SEVERITIES.includes(minSeverity)) {
    throw new ConfigError(
      `min_severity ${JSON.stringify(minSeverity)} is not one of ${SEVERITIES.join(", ")}`,
    );
  }
  const timeoutMs = value.timeout_ms ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > 60000) {
    throw new ConfigError(`timeout_ms ${JSON.stringify(timeoutMs)} is not 1..=60000`);
  }
  for (const key of ["username", "channel"]) {
    if (value[key] !== undefined) {
      if (typeof value[key] !== "string" || value[key] === "") {
        throw new ConfigError(`${key} must be a non-empty string`);
      }
      if (format === "teams") {
        throw new ConfigError(`${key} is not used by the teams format (the Workflow decides)`);
      }
    }
  }
  return {
    url,
    format,
    minSeverity,
    timeoutMs,
    username: value.username ?? null,
    channel: value.channel ?? null,
  };
}

/** Whether an event of `severity` is sent under this configuration. */
export function wanted(config, severity) {
  return SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(config.minSeverity);
}

const TITLES = {
  issued: "Certificate issued",
  renewed: "Certificate renewed",
  revoked: "Certificate revoked",
  expiring: "Certificate expiring",
  failed: "Certificate operation failed",
};

/** A timestamp (seconds since the epoch, UTC) as RFC 3339, without milliseconds. */
function rfc3339(seconds) {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * The event as a neutral summary: a title, the gateway's sentence, and the facts (names,
 * serial, validity, days left, account) in a fixed order.
 * `event`: `{ eventType, severity, message, daysLeft?, certificate? }` with the certificate's
 * `{ serial, identifiers: [{ kind, value }], notBefore, notAfter, account }`.
 */
export function summary(event) {
  const facts = [];
  const cert = event.certificate;
  if (cert) {
    facts.push(["Names", cert.identifiers.map((id) => id.value).join(", ")]);
    facts.push(["Serial", cert.serial]);
    facts.push(["Valid", `${rfc3339(cert.notBefore)} to ${rfc3339(cert.notAfter)}`]);
  }
  if (event.daysLeft !== undefined && event.daysLeft !== null) {
    facts.push(["Days left", String(event.daysLeft)]);
  }
  if (cert) {
    facts.push(["Account", cert.account]);
  }
  const title = `${TITLES[event.eventType] ?? event.eventType} (${event.severity})`;
  return { title, message: event.message, facts };
}

/** Slack's mrkdwn and Markdown both treat `&`, `<`, `>` specially: Slack wants them as
 * entities, and escaping them keeps a name like `<!channel>` from pinging anyone. */
function escapeMarkup(text) {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** The JSON body for the configured chat system. */
export function payload(config, event) {
  const { title, message, facts } = summary(event);
  if (config.format === "teams") {
    return {
      type: "message",
      attachments: [
        {
          contentType: "application/vnd.microsoft.card.adaptive",
          content: {
            $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
            type: "AdaptiveCard",
            version: "1.4",
            body: [
              {
                type: "TextBlock",
                text: title,
                weight: "Bolder",
                size: "Medium",
                wrap: true,
                color: event.severity === "info" ? "Default" : "Attention",
              },
              { type: "TextBlock", text: message, wrap: true },
              { type: "FactSet", facts: facts.map(([title, value]) => ({ title, value })) },
            ],
          },
        },
      ],
    };
  }
  const bold = config.format === "slack" ? (s) => `*${s}*` : (s) => `**${s}**`;
  const lines = [bold(escapeMarkup(title)), escapeMarkup(message)];
  for (const [name, value] of facts) {
    lines.push(`${bold(name)}: ${escapeMarkup(value)}`);
  }
  const body = { text: lines.join("\n") };
  if (config.username !== null) body.username = config.username;
  if (config.channel !== null) body.channel = config.channel;
  return body;
}
