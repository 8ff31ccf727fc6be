// The live dashboard: a tenant's events, workflow instances, pending approvals, usage and the audit log's
// latest signed checkpoint, through the public endpoint (this page's own origin): subscriptions over
// graphql-transport-ws (graphql-ws), queries and mutations over POST /graphql.
//
// The token comes from the link `cpctl dashboard` prints (`…/dashboard/#token=…`): the fragment never
// reaches a server; the page keeps it for this tab only (sessionStorage) and takes it out of the address.
// Every value from the API is put on the page as text, never as markup.

const HOUR = 3600 * 1000;
const KEEP_EVENTS = 50;

const $ = (id) => document.getElementById(id);

function takeToken() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) {
    sessionStorage.setItem("cp-token", fromLink);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return fromLink || sessionStorage.getItem("cp-token");
}

/// When the token expires (ms since the epoch), from its `exp` claim; none for a token that is no JWT.
function expiry(token) {
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

const token = takeToken();
const expiresAt = token ? expiry(token) : null;
/// Set once the token has expired: nothing is subscribed or fetched again.
let dead = false;
const expired = () => dead || (expiresAt !== null && Date.now() >= expiresAt);

function die() {
  dead = true;
  sessionStorage.removeItem("cp-token");
  setStatus("failed", "token expired");
  problem("The link's token has expired: run `cpctl dashboard` for a new one.");
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text || state;
}

function problem(text) {
  $("problem").hidden = !text;
  $("problem").textContent = text || "";
}

class ApiError extends Error {
  constructor(error) {
    const code = error?.extensions?.code;
    super(code ? `${code}: ${error.message}` : String(error?.message ?? error));
    this.code = code;
  }
}

async function gql(query, variables = {}) {
  const resp = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await resp.json().catch(() => ({ errors: [{ message: `HTTP ${resp.status}` }] }));
  if (body.errors?.length) throw new ApiError(body.errors[0]);
  return body.data;
}

const time = (iso) => new Date(iso).toLocaleTimeString();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

// ---- Subscriptions ------------------------------------------------------------------------------------

const ws = graphqlWs.createClient({
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
  connectionParams: () => ({ Authorization: `Bearer ${token}` }),
  lazy: false,
  keepAlive: 20000,
  retryAttempts: Infinity,
  shouldRetry: () => !expired(),
  retryWait: (retries) => new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** retries) * (0.5 + Math.random() / 2))),
  on: {
    connected: () => {
      setStatus("live");
      problem(null);
      // Instances started while no connection was open.
      loadInstances().catch((e) => problem(e.message));
    },
    closed: () => setStatus(expired() ? "failed" : "reconnecting", expired() ? "token expired" : "reconnecting…"),
  },
});

/// Subscribes, and subscribes again whenever the server ends it (a token's expiry ends every stream),
/// with backoff, until `done(data)` says the stream has reached its end, the token has expired, or the
/// server has refused it: an error coded UNAUTHENTICATED or FORBIDDEN, or three ends in a row with nothing
/// delivered (the router turns a subgraph's refusal into a bare `complete`). `stopped()` is then called.
/// Returns a function that ends it.
function live(query, variables, onData, done = () => false, stopped = () => {}) {
  let finished = false;
  let empty = 0;
  let unsubscribe = () => {};
  const stop = () => {
    if (!finished) {
      finished = true;
      unsubscribe();
      stopped();
    }
  };
  const again = () => {
    if (finished || dead) return;
    empty += 1;
    if (empty >= 3) {
      problem("a live view was refused by the server: check the link's permissions");
      return stop();
    }
    setTimeout(run, Math.min(5000, 500 * 2 ** empty) * (0.5 + Math.random() / 2));
  };
  const run = () => {
    let delivered = false;
    unsubscribe = ws.subscribe(
      { query, variables },
      {
        next: (r) => {
          if (r.errors?.length) return problem(new ApiError(r.errors[0]).message);
          delivered = true;
          empty = 0;
          onData(r.data);
          if (done(r.data)) stop();
        },
        error: (e) => {
          const first = Array.isArray(e) ? e[0] : null;
          const code = first?.extensions?.code ?? e?.code;
          problem(e instanceof Error ? e.message : first ? new ApiError(first).message : "a live view failed");
          if (["UNAUTHENTICATED", "FORBIDDEN", 4401, 4403].includes(code)) return stop();
          if (delivered) empty = 0;
          again();
        },
        complete: () => {
          if (delivered) empty = 0;
          again();
        },
      },
    );
  };
  run();
  return stop;
}

// ---- The tenant ---------------------------------------------------------------------------------------

async function showTenant() {
  const { currentTenant } = await gql("{ currentTenant { id displayName status } }");
  $("tenant").textContent = `${currentTenant.displayName} (${currentTenant.id}, ${currentTenant.status})`;
}

// ---- Events -------------------------------------------------------------------------------------------

function showEvent(e) {
  const list = $("events");
  list.prepend(
    el("li", { "data-event-type": e.eventType, "data-event-id": e.eventId },
      el("span", { class: "when" }, time(e.occurredAt)),
      el("span", { class: "type" }, e.eventType),
      el("span", { class: "detail" }, JSON.stringify(e.payload))),
  );
  while (list.children.length > KEEP_EVENTS) list.lastChild.remove();
  if (e.eventType === "TenantUpdated" || e.eventType.startsWith("Tenant")) showTenant().catch(() => {});
}

// ---- Workflow instances -------------------------------------------------------------------------------

const INSTANCE = "id definitionKey definitionVersion status version updatedAt";

function showInstance(i) {
  const body = $("workflows");
  const row = el("tr", { "data-instance": i.id, "data-status": i.status },
    el("td", {}, i.id.slice(0, 8)),
    el("td", {}, `${i.definitionKey}@${i.definitionVersion}`),
    el("td", { class: "status-cell" }, i.status),
    el("td", {}, i.version),
    el("td", {}, time(i.updatedAt)));
  const old = body.querySelector(`tr[data-instance="${CSS.escape(i.id)}"]`);
  if (old) {
    // An older state arriving late never replaces a newer one.
    if (Number(old.children[3].textContent) > i.version) return;
    old.replaceWith(row);
  } else {
    body.prepend(row);
  }
}

const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "CONTINUED_AS_NEW"]);
/// The instances followed live, oldest first, each with the function that ends its watch.
const watched = new Map();
const MAX_WATCHED = 20;

/// Follows an instance's process state (now, then after each of its events) until it ends; past
/// `MAX_WATCHED`, the longest-followed instance is let go (its row stays as it was last seen).
function watchInstance(id) {
  if (watched.has(id)) return;
  if (watched.size >= MAX_WATCHED) {
    const [oldest, stop] = watched.entries().next().value;
    watched.delete(oldest);
    stop();
  }
  const stop = live(
    `subscription($id: ID!) { processState(instanceId: $id) { ${INSTANCE} } }`,
    { id },
    (d) => showInstance(d.processState),
    (d) => FINAL.has(d.processState.status),
    () => watched.delete(id),
  );
  watched.set(id, stop);
}

async function loadInstances() {
  const { workflowInstances } = await gql(`{ workflowInstances(first: 20) { nodes { ${INSTANCE} } } }`);
  [...workflowInstances.nodes].reverse().forEach(showInstance);
  workflowInstances.nodes.filter((i) => !FINAL.has(i.status)).forEach((i) => watchInstance(i.id));
}

// ---- Approvals ----------------------------------------------------------------------------------------

async function loadApprovals() {
  const { approvals } = await gql(
    "{ approvals(status: PENDING, first: 50) { nodes { id subjectKind subjectId summary approvals quorum expiresAt } } }",
  );
  const list = $("approvals");
  list.replaceChildren(
    ...approvals.nodes.map((a) =>
      el("li", { "data-approval": a.id },
        el("span", { class: "type" }, a.summary),
        el("span", { class: "detail" }, `${a.subjectKind} ${a.subjectId} · ${a.approvals}/${a.quorum} · until ${time(a.expiresAt)}`),
        el("button", { class: "approve", disabled: voting.has(a.id), onclick: () => decide("approve", a.id) }, "Approve"),
        el("button", { class: "reject", disabled: voting.has(a.id), onclick: () => decide("reject", a.id) }, "Reject")),
    ),
  );
  if (!approvals.nodes.length) list.append(el("li", { class: "empty" }, "none pending"));
}

/// Approvals with a vote in flight: their buttons stay disabled (across the list's refreshes) until the
/// answer, so a double click is one vote.
const voting = new Set();

async function decide(verb, id) {
  if (voting.has(id)) return;
  voting.add(id);
  document.querySelectorAll(`#approvals li[data-approval="${CSS.escape(id)}"] button`).forEach((b) => (b.disabled = true));
  try {
    await gql(`mutation($id: ID!) { ${verb}(id: $id, note: "from the dashboard") { id status } }`, { id });
    problem(null);
  } catch (e) {
    problem(e.message);
  }
  voting.delete(id);
  await loadApprovals().catch((e) => problem(e.message));
}

// ---- Usage --------------------------------------------------------------------------------------------

async function loadUsage() {
  const meter = $("meter").value.trim() || "api-calls";
  const now = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
  const hours = Array.from({ length: 12 }, (_, i) => now - (12 - i) * HOUR);
  const fields = hours.map((from, i) => `h${i}: usage(meter: $meter, from: "${new Date(from).toISOString()}", to: "${new Date(from + HOUR).toISOString()}") { quantity }`);
  const data = await gql(`query($meter: String!) { ${fields.join(" ")} }`, { meter });
  const values = hours.map((_, i) => data[`h${i}`].quantity);
  const max = Math.max(1, ...values);
  const svg = $("usage");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  values.forEach((v, i) => {
    const h = Math.round((v / max) * 110);
    const bar = document.createElementNS(ns, "rect");
    Object.entries({ x: 8 + i * 39, y: 120 - h, width: 30, height: h, "data-quantity": v }).forEach(([k, val]) => bar.setAttribute(k, val));
    const label = document.createElementNS(ns, "text");
    Object.entries({ x: 8 + i * 39, y: 134 }).forEach(([k, val]) => label.setAttribute(k, val));
    label.textContent = `${new Date(hours[i]).getHours()}h ${v}`;
    svg.append(bar, label);
  });
}

// ---- Audit --------------------------------------------------------------------------------------------

async function loadAudit() {
  try {
    const { auditCheckpoint: c } = await gql("{ auditCheckpoint { origin treeSize rootHash verifierKey note } }");
    $("audit").replaceChildren(
      el("dt", {}, "log"), el("dd", {}, c.origin),
      el("dt", {}, "entries"), el("dd", { id: "audit-size" }, c.treeSize),
      el("dt", {}, "root"), el("dd", {}, c.rootHash),
      el("dt", {}, "verifier key"), el("dd", {}, c.verifierKey));
    $("audit-note").textContent = c.note;
  } catch (e) {
    $("audit").replaceChildren(el("dt", {}, "checkpoint"), el("dd", {}, e.message));
  }
}

// ---- Start --------------------------------------------------------------------------------------------

function every(ms, load) {
  const run = () => load().catch((e) => problem(e.message));
  run();
  return setInterval(() => !expired() && run(), ms);
}

if (!token) {
  setStatus("failed", "no token");
  problem("No token: open the link `cpctl dashboard` prints.");
} else if (expired()) {
  die();
} else {
  showTenant().catch((e) => problem(e.message));
  live("subscription { tenantEvents { eventId eventType occurredAt payload } }", {}, (d) => showEvent(d.tenantEvents));
  // A new instance's first event starts a watch on its process state.
  live("subscription { workflowEvents { eventId eventType instanceId } }", {}, (d) => {
    const id = d.workflowEvents.instanceId;
    if (id) watchInstance(id);
  });
  every(3000, loadApprovals);
  every(30000, loadUsage);
  every(10000, loadAudit);
  $("meter").addEventListener("change", () => loadUsage().catch((e) => problem(e.message)));
  if (expiresAt) {
    // setTimeout fires at once past 2^31 ms: re-armed until the time has come.
    const arm = () => {
      const left = expiresAt - Date.now();
      if (left > 0) return setTimeout(arm, Math.min(left, 2 ** 31 - 1));
      die();
      ws.dispose();
    };
    arm();
  }
}
