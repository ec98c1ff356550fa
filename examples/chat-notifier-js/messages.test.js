// Unit tests of the chat notifier's rules (`messages.js`), natively: `node --test`. The
// component itself is tested end to end against a real HTTP receiver by the gateway's test
// `chat_notifier_js` (host/tests/e2e/notifications.rs).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ConfigError, parseConfig, payload, summary, wanted } from "./messages.js";

const expiring = {
  eventType: "expiring",
  severity: "warning",
  message: "web.example expires in 7 days",
  daysLeft: 7,
  certificate: {
    serial: "0a1b",
    identifiers: [
      { kind: "dns", value: "web.example" },
      { kind: "ip", value: "192.0.2.7" },
    ],
    // s64 arrives as a BigInt.
    notBefore: 1700000000n,
    notAfter: 1700604800n,
    account: "https://ca.example/acme/acct/1",
  },
};

test("summary lists the facts in a fixed order", () => {
  assert.deepEqual(summary(expiring), {
    title: "Certificate expiring (warning)",
    message: "web.example expires in 7 days",
    facts: [
      ["Names", "web.example, 192.0.2.7"],
      ["Serial", "0a1b"],
      ["Valid", "2023-11-14T22:13:20Z to 2023-11-21T22:13:20Z"],
      ["Days left", "7"],
      ["Account", "https://ca.example/acme/acct/1"],
    ],
  });
  const failed = { eventType: "failed", severity: "critical", message: "renewal failed" };
  assert.deepEqual(summary(failed).facts, [], "an event without a certificate has no facts");
});

test("slack and mattermost differ in their bold", () => {
  const slack = payload(parseConfig('{"url": "https://hooks.example/s", "channel": "#pki"}'), expiring);
  assert.equal(
    slack.text.split("\n").slice(0, 3).join("\n"),
    "*Certificate expiring (warning)*\nweb.example expires in 7 days\n*Names*: web.example, 192.0.2.7",
  );
  assert.equal(slack.channel, "#pki");
  assert.equal(slack.username, undefined);
  const mattermost = payload(
    parseConfig('{"url": "https://mm.example/hooks/x", "format": "mattermost", "username": "acmegate"}'),
    expiring,
  );
  assert.ok(mattermost.text.startsWith("**Certificate expiring (warning)**\n"), mattermost.text);
  assert.equal(mattermost.username, "acmegate");
});

test("markup in names cannot ping or format", () => {
  const hostile = structuredClone(expiring);
  hostile.message = "<!channel> & *x*";
  const text = payload(parseConfig('{"url": "https://h.example/"}'), hostile).text;
  assert.ok(text.includes("&lt;!channel&gt; &amp; *x*"), text);
  assert.ok(!text.includes("<!channel>"));
});

test("teams gets an adaptive card with a fact set", () => {
  const body = payload(parseConfig('{"url": "https://t.example/w", "format": "teams"}'), expiring);
  assert.equal(body.type, "message");
  const card = body.attachments[0];
  assert.equal(card.contentType, "application/vnd.microsoft.card.adaptive");
  assert.equal(card.content.type, "AdaptiveCard");
  const [title, message, facts] = card.content.body;
  assert.equal(title.text, "Certificate expiring (warning)");
  assert.equal(title.color, "Attention");
  assert.equal(message.text, "web.example expires in 7 days");
  assert.deepEqual(facts.facts[3], { title: "Days left", value: "7" });
});

test("min_severity filters", () => {
  const config = parseConfig('{"url": "https://h.example/", "min_severity": "warning"}');
  assert.ok(!wanted(config, "info"));
  assert.ok(wanted(config, "warning"));
  assert.ok(wanted(config, "critical"));
  assert.ok(wanted(parseConfig('{"url": "https://h.example/"}'), "info"));
});

test("configuration errors name the key and the value", () => {
  const bad = {
    "{}": "url undefined is not an http(s) URL",
    '{"url": "ftp://x"}': 'url "ftp://x" is not an http(s) URL',
    '{"url": "https://x", "format": "irc"}': 'format "irc" is not one of slack, mattermost, teams',
    '{"url": "https://x", "min_severity": "loud"}':
      'min_severity "loud" is not one of info, warning, critical',
    '{"url": "https://x", "timeout_ms": 0}': "timeout_ms 0 is not 1..=60000",
    '{"url": "https://x", "format": "teams", "channel": "#a"}':
      "channel is not used by the teams format (the Workflow decides)",
    '{"url": "https://x", "urls": 1}':
      "invalid configuration: unknown field `urls`, expected one of url, format, min_severity, timeout_ms, username, channel",
    "[]": "invalid configuration: expected a JSON object",
  };
  for (const [text, message] of Object.entries(bad)) {
    assert.throws(() => parseConfig(text), new ConfigError(message), text);
  }
});
