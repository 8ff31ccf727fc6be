//! Live subscriptions over WebSocket, fed from RabbitMQ: an instance's process state through each of its
//! transitions in order, ending after the last; its events; another tenant's instance not found.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use test_support::{Next, WsClient};

use crate::helpers::{self, app, member, skill_published, tenant, App};

async fn connect(app: &App, token: &str) -> WsClient {
    let url = format!("{}/graphql", app.serve().await.replace("http://", "ws://"));
    WsClient::init(&url, app.config.router_secret.expose_secret(), token).await
}

/// The data of subscription `id`'s next message, or `None` when it completed.
async fn next_of(ws: &mut WsClient, id: &str) -> Option<Value> {
    loop {
        match ws.next(Duration::from_secs(10)).await {
            Next::Message(m) if m["id"] == id && m["type"] == "next" => {
                assert!(m["payload"]["errors"].is_null(), "{m}");
                return Some(m["payload"]["data"].clone());
            }
            Next::Message(m) if m["id"] == id && m["type"] == "complete" => return None,
            Next::Message(_) => continue,
            other => panic!("subscription {id}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_subscriber_sees_an_instances_transitions_in_order_and_its_events() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    let agent = app.signer.mint(
        test_support::ISSUER,
        test_support::AUDIENCE,
        "w1",
        Some(&t),
        &["agent:report"],
        Duration::from_secs(600),
    );
    skill_published(&app, &t, "draft", "1.0.0").await;
    let steps = json!([
        { "id": "draft", "type": "AGENT_TASK", "skill": "draft", "pool": "writers", "next": "done" },
        { "id": "done", "type": "AGENT_TASK", "skill": "draft", "pool": "writers" }
    ]);
    let publish =
        "mutation($input: PublishWorkflowDefinitionInput!) { publishWorkflowDefinition(input: $input) { version } }";
    app.ok(&token, publish, json!({ "input": { "key": "two", "name": "two", "start": "draft", "steps": steps } }))
        .await;
    let pool = "mutation { configureAgentPool(input: { pool: \"writers\", agents: [\"w1\"] }) { pool } }";
    app.ok(&token, pool, json!({})).await;
    let v = app.ok(&token, "mutation { startWorkflow(input: { definitionKey: \"two\" }) { id } }", json!({})).await;
    let id = v["startWorkflow"]["id"].as_str().unwrap().to_owned();

    let mut ws = connect(&app, &token).await;
    ws.subscribe("s", &format!("subscription {{ processState(instanceId: \"{id}\") {{ status version }} }}")).await;
    ws.subscribe("e", &format!("subscription {{ workflowEvents(instanceId: \"{id}\") {{ eventType instanceId }} }}"))
        .await;
    let first = next_of(&mut ws, "s").await.unwrap();
    assert_eq!(first["processState"]["status"], "AWAITING_AGENT");
    let mut version = first["processState"]["version"].as_i64().unwrap();

    let tasks = "query($id: ID!) { workflowInstance(id: $id) { tasks { id stepId status fencingToken } } }";
    let complete = "mutation($input: CompleteAgentTaskInput!) { completeAgentTask(input: $input) { status } }";
    for step in ["draft", "done"] {
        let v = app.ok(&token, tasks, json!({ "id": id })).await;
        let task = v["workflowInstance"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["stepId"] == step && t["status"] == "ASSIGNED")
            .unwrap()
            .clone();
        let input = json!({ "input": { "taskId": task["id"], "fencingToken": task["fencingToken"], "provider": "openai", "model": "m", "tokens": 1, "durationMs": 1 } });
        app.ok(&agent, complete, input).await;
    }
    // Every transition, in order, each one version on; the stream ends after the final state. Beside it,
    // the instance's events as they were published.
    let (mut statuses, mut events, mut ended) = (Vec::new(), Vec::new(), false);
    while !ended || events.last().map(String::as_str) != Some("WorkflowCompleted") {
        let m = match ws.next(Duration::from_secs(10)).await {
            Next::Message(m) => m,
            other => panic!("{other:?} after {statuses:?} and {events:?}"),
        };
        assert!(m["payload"]["errors"].is_null(), "{m}");
        match (m["id"].as_str(), m["type"].as_str()) {
            (Some("s"), Some("next")) => {
                let d = &m["payload"]["data"]["processState"];
                assert_eq!(d["version"].as_i64().unwrap(), version + 1, "in order, none skipped: {d}");
                version += 1;
                statuses.push(d["status"].as_str().unwrap().to_owned());
            }
            (Some("s"), Some("complete")) => ended = true,
            (Some("e"), Some("next")) => {
                let d = &m["payload"]["data"]["workflowEvents"];
                assert_eq!(d["instanceId"], id.as_str());
                events.push(d["eventType"].as_str().unwrap().to_owned());
            }
            _ => panic!("{m}"),
        }
    }
    assert_eq!(statuses, ["RUNNING", "ASSIGNING_TASK", "AWAITING_AGENT", "RUNNING", "COMPLETED"]);
    // The events published after the subscription began (the start's may come too, if the relay published
    // them after it): the history's last ones, in its order.
    let history = "query($id: ID!) { workflowInstance(id: $id) { history { type } } }";
    let v = app.ok(&token, history, json!({ "id": id })).await;
    let all: Vec<String> = v["workflowInstance"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(all.ends_with(&events), "{events:?} are the history's last, in order: {all:?}");
    assert!(events.len() >= 5, "at least everything after the subscription: {events:?}");

    // Another tenant's member finds no such instance.
    let other = member(&app, &tenant(&app, "globex"));
    let mut theirs = connect(&app, &other).await;
    theirs.subscribe("x", &format!("subscription {{ processState(instanceId: \"{id}\") {{ status }} }}")).await;
    match theirs.next(Duration::from_secs(10)).await {
        Next::Message(m) => assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{m}"),
        other => panic!("{other:?}"),
    }
    app.cleanup().await;
}
