// Drives the official Node clients against a live Nudge, as a user would: each client only
// has its host (or URL/port) setting changed. tests/integration/test_http_clients.py runs it
// with NUDGE_CLIENTS = {"<client>": {"person": ..., "email": ...}, ...} and the keys in the
// environment (NODE_EXTRA_CA_CERTS trusts the local certificate), then counts the emails.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const base = process.env.NUDGE_URL; // https://localhost:<port>
const port = Number(new URL(base).port);
const site = process.env.NUDGE_SITE_ID;
const apiKey = process.env.NUDGE_API_KEY;
const writeKey = process.env.NUDGE_SEGMENT_WRITE_KEY;
const people = JSON.parse(process.env.NUDGE_CLIENTS);

const clients = {
  // 4.x speaks https only and ignores the URL's port: `port` goes with the URL.
  async "customerio-node@4"({ person, email }) {
    const { TrackClient } = require("customerio-node-4");
    const cio = new TrackClient(site, apiKey, { url: `${base}/api/v1`, port });
    await cio.identify(person, { email, created_at: 1700000000 });
    await cio.track(person, { name: "signed_up", data: { client: "customerio-node@4" } });
  },
  async "customerio-node@5"({ person, email }) {
    const { TrackClient } = require("customerio-node");
    const cio = new TrackClient(site, apiKey, { url: `${base}/api/v1` });
    await cio.identify(person, { email });
    await cio.track(person, { name: "signed_up", data: { client: "customerio-node@5" } });
  },
  // The same client through Track API v2 (its `url` is rewritten to /api/v2 by the client).
  async "customerio-node@5 v2"({ person, email }) {
    const { TrackClient } = require("customerio-node");
    const cio = new TrackClient(site, apiKey, { url: `${base}/api/v1` });
    await cio.batch([
      { type: "person", identifiers: { id: person }, action: "identify", attributes: { email } },
      { type: "person", identifiers: { id: person }, action: "event", name: "signed_up" },
    ]);
  },
  async "@segment/analytics-node"({ person, email }) {
    const { Analytics } = require("@segment/analytics-node");
    const analytics = new Analytics({ writeKey, host: base, flushAt: 2, maxRetries: 0 });
    const failures = [];
    analytics.on("error", (error) => failures.push(String(error?.reason ?? error)));
    analytics.identify({ userId: person, traits: { email } });
    analytics.track({ userId: person, event: "signed_up", properties: { client: "analytics-node" } });
    await analytics.closeAndFlush({ timeout: 20000 });
    if (failures.length) throw new Error(failures.join("; "));
  },
  async "@rudderstack/rudder-sdk-node"({ person, email }) {
    const Analytics = require("@rudderstack/rudder-sdk-node");
    const client = new Analytics(writeKey, { dataPlaneUrl: base, flushAt: 20, flushInterval: 60000, maxRetries: 0 });
    const sent = (call, message) =>
      new Promise((resolve, reject) => client[call](message, (error) => (error ? reject(error) : resolve())));
    const identified = sent("identify", { userId: person, traits: { email } });
    const tracked = sent("track", { userId: person, event: "signed_up", properties: { client: "rudder-sdk-node" } });
    await client.flush();
    await Promise.all([identified, tracked]);
  },
};

const results = {};
for (const [name, person] of Object.entries(people)) {
  try {
    await clients[name](person);
    results[name] = { ok: true };
  } catch (error) {
    // fetch() hides the reason (a refused certificate, say) in `cause`.
    const cause = error?.cause ? ` (cause: ${error.cause?.code ?? ""} ${error.cause?.message ?? error.cause})` : "";
    results[name] = { ok: false, error: String(error?.stack ?? error) + cause };
  }
}
console.log(JSON.stringify(results));
