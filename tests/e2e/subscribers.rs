//! Many subscribers of one token through the public endpoint: each receives every event or is told, with a
//! code, that it was not admitted — none is admitted and then left silent.

use std::collections::HashMap;
use std::time::Duration;

use e2e::Stack;
use futures::StreamExt;
use serde_json::json;
use test_support::{Next, WsClient};

const SUBSCRIPTION: &str = "subscription { tenantEvents(eventTypes: [\"TenantUpdated\"]) { payload } }";

/// What one subscriber saw.
enum Seen {
    /// The display name of a rename it was sent.
    Event(usize, String),
    /// Its subscription ended with this message (an `error` or `complete`), or its connection closed.
    Ended(usize, serde_json::Value),
}

/// Every subscriber's events and endings so far.
#[derive(Default)]
struct Tally {
    events: HashMap<usize, Vec<String>>,
    ended: HashMap<usize, serde_json::Value>,
}

impl Tally {
    fn record(&mut self, s: Seen) {
        match s {
            Seen::Event(i, name) => self.events.entry(i).or_default().push(name),
            Seen::Ended(i, m) => {
                self.ended.insert(i, m);
            }
        }
    }

    /// The `round-` renames subscriber `i` has heard, in order.
    fn rounds(&self, i: usize) -> Vec<String> {
        self.events.get(&i).map(|v| v.iter().filter(|n| n.starts_with("round-")).cloned().collect()).unwrap_or_default()
    }
}

/// 1,000 `tenantEvents` subscriptions of one tenant with one token, each on its own connection through the
/// edge and Hive Router. The router carries all of one credential's subscriptions to the subgraph on one
/// connection, so a cap the subgraph applies per connection used to silence all but 100 of them; now the
/// edge admits up to its per-token cap, refuses the rest with `QUOTA_EXCEEDED`, and the subgraph's own
/// per-connection cap is above the edge's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_of_one_token_each_get_every_event_or_a_coded_refusal() {
    const SUBSCRIBERS: usize = 1_000;
    const ROUNDS: usize = 3;
    let cap = edge::DEFAULT_CAPS.per_credential;
    assert!(cap < SUBSCRIBERS, "the test must cross the per-token cap");
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("fan-{}", stack.id);
    super::tenants_on_new_edition(&stack, &hive, &[&tenant], "T").await;
    let token = stack.member_token(&tenant);

    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<Seen>();
    // Connect in parallel, a few dozen at a time; each subscriber then reports what it sees.
    let clients: Vec<WsClient> = futures::stream::iter(0..SUBSCRIBERS)
        .map(|_| {
            let (url, token) = (hive.ws_url.clone(), token.clone());
            async move {
                let mut ws = WsClient::init(&url, "", &token).await;
                ws.subscribe("1", SUBSCRIPTION).await;
                ws
            }
        })
        .buffered(50)
        .collect()
        .await;
    let readers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    match ws.next(Duration::from_secs(300)).await {
                        Next::Message(m) if m["type"] == "next" => {
                            let name = &m["payload"]["data"]["tenantEvents"]["payload"]["displayName"];
                            let _ = tx.send(Seen::Event(i, name.as_str().unwrap_or_default().to_owned()));
                        }
                        Next::Message(m) => {
                            let _ = tx.send(Seen::Ended(i, m));
                            return;
                        }
                        Next::Closed(code, why) => {
                            let _ = tx.send(Seen::Ended(i, json!({ "closed": code, "reason": why })));
                            return;
                        }
                        Next::Silence => return,
                    }
                }
            })
        })
        .collect();
    drop(tx);

    let rename = |name: String| {
        let member = token.clone();
        let (stack, url) = (&stack, hive.url.clone());
        async move {
            stack
                .ok(
                    &url,
                    &member,
                    "mutation($n: String!) { updateTenant(displayName: $n) { id } }",
                    json!({ "n": name }),
                )
                .await;
        }
    };
    let mut tally = Tally::default();

    // Warm-up renames, one at a time, until every subscriber has either heard one or ended: a subscription
    // goes live at the subgraph a moment after it is sent. One that does neither within the minute was
    // silenced.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let heard = |tally: &Tally| {
        (0..SUBSCRIBERS).filter(|i| tally.events.contains_key(i) || tally.ended.contains_key(i)).count()
    };
    let mut warm = 0;
    while heard(&tally) < SUBSCRIBERS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {SUBSCRIBERS} subscribers neither received an event nor were told why not",
            SUBSCRIBERS - heard(&tally)
        );
        warm += 1;
        rename(format!("warm-{warm}")).await;
        // This rename's deliveries, until a second passes without one.
        while let Ok(Some(s)) = tokio::time::timeout(Duration::from_secs(1), seen.recv()).await {
            tally.record(s);
            if heard(&tally) == SUBSCRIBERS {
                break;
            }
        }
    }

    // Every ending is a refusal the client can read: an `error` coded QUOTA_EXCEEDED, from the edge.
    for (i, m) in &tally.ended {
        assert_eq!(m["type"], "error", "subscriber {i} ended without a coded error: {m}");
        assert_eq!(m["payload"][0]["extensions"]["code"], "QUOTA_EXCEEDED", "subscriber {i}: {m}");
    }
    assert_eq!(tally.ended.len(), SUBSCRIBERS - cap, "the edge admits exactly its per-token cap");
    let live: Vec<usize> = (0..SUBSCRIBERS).filter(|i| !tally.ended.contains_key(i)).collect();

    // Now each live subscriber hears every rename, in order.
    for round in 1..=ROUNDS {
        rename(format!("round-{round}")).await;
    }
    let want: Vec<String> = (1..=ROUNDS).map(|r| format!("round-{r}")).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while live.iter().any(|&i| tally.rounds(i).len() < ROUNDS) {
        match tokio::time::timeout_at(deadline, seen.recv()).await {
            Ok(Some(s)) => tally.record(s),
            _ => break,
        }
    }
    for &i in &live {
        assert_eq!(tally.rounds(i), want, "subscriber {i} missed events");
    }
    assert!(tally.ended.keys().all(|&i| tally.rounds(i).is_empty()), "a refused subscriber received events");
    for r in readers {
        r.abort();
    }
    hive.stop().await;
    stack.stop().await;
}

/// A token's subscriptions count the same over WebSocket and over HTTP (SSE): past the cap, a WebSocket
/// subscription gets a coded `error` and an SSE one a 429 coded `QUOTA_EXCEEDED`; a subscription that ends
/// — a WebSocket `complete`, an SSE client going away — frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_sse_subscriptions_share_a_tokens_cap_and_ending_one_frees_its_place() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("cap-{}", stack.id);
    super::tenants_on_new_edition(&stack, &hive, &[&tenant], "T").await;
    let token = stack.member_token(&tenant);
    // An edge of its own in front of the same router, allowing a token two subscriptions, with two
    // threads: the connections may land on either, and the counts are the edge's, not a thread's.
    let upstream = hive.router_url.trim_end_matches("/graphql").to_owned();
    let cfg =
        edge::Config { max_subscriptions_per_token: 2, ..edge::Config::new("127.0.0.1:0".parse().unwrap(), upstream) };
    let stop = tokio_util::sync::CancellationToken::new();
    let addr = edge::start(cfg, 2, stop.clone()).expect("the edge starts").addr;
    let (http_url, ws_url) = (format!("http://{addr}/graphql"), format!("ws://{addr}/graphql"));
    let sse = || {
        stack
            .http
            .post(&http_url)
            .bearer_auth(&token)
            .header("accept", "text/event-stream")
            .json(&json!({ "query": SUBSCRIPTION }))
            .send()
    };

    let mut ws = WsClient::init(&ws_url, "", &token).await;
    ws.subscribe("1", SUBSCRIPTION).await;
    let streaming = sse().await.unwrap();
    assert_eq!(streaming.status(), 200, "the second subscription, over SSE, is admitted");
    assert!(streaming.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));

    let refused = sse().await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUOTA_EXCEEDED", "{body}");
    ws.subscribe("2", SUBSCRIPTION).await;
    match ws.next_control(Duration::from_secs(5)).await {
        Next::Message(m) => {
            assert_eq!((m["id"].as_str(), m["type"].as_str()), (Some("2"), Some("error")), "{m}");
            assert_eq!(m["payload"][0]["extensions"]["code"], "QUOTA_EXCEEDED", "{m}");
            assert!(m["payload"][0]["message"].as_str().unwrap().contains("per token"), "{m}");
        }
        other => panic!("the third subscription was not refused: {other:?}"),
    }

    // The SSE client goes away: its place is free once the edge notices (at the latest when the router's
    // next keep-alive, every 10 s, finds the connection gone).
    drop(streaming);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let again = sse().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the SSE subscription's place was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ending the WebSocket subscription frees its place too.
    ws.send(json!({ "id": "1", "type": "complete" })).await;
    ws.subscribe("3", SUBSCRIPTION).await;
    assert_eq!(ws.next_control(Duration::from_millis(500)).await, Next::Silence, "the third was admitted");
    stop.cancel();
    hive.stop().await;
    stack.stop().await;
}
