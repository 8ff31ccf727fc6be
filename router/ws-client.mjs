// A graphql-ws (graphql-transport-ws) client for the end-to-end tests: subscribes and prints one JSON line
// per message — {"connected":true} once acknowledged, then each result — until COUNT results have arrived.
//
//   node router/ws-client.mjs URL TOKEN QUERY [VARIABLES_JSON] [COUNT]
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, query, variables = "{}", count = "1"] = process.argv.slice(2);
let left = Number(count);
const out = (v) => process.stdout.write(JSON.stringify(v) + "\n");
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  lazy: false,
  retryAttempts: 0,
  connectionParams: { Authorization: `Bearer ${token}` },
  on: { connected: () => out({ connected: true }) },
});
client.subscribe(
  { query, variables: JSON.parse(variables) },
  {
    next: (result) => {
      out(result);
      if (--left <= 0) client.dispose().then(() => process.exit(0));
    },
    error: (e) => {
      // A list of GraphQL errors (the server refused the operation), a CloseEvent, or an Error.
      out({ error: Array.isArray(e) ? e : (e?.message ?? e?.reason ?? String(e)) });
      process.exit(2);
    },
    complete: () => process.exit(0),
  },
);
