//! Workflow through the router, as the README shows it: a tenant starts the platform registry's
//! `content-review`, watches it live over graphql-ws through Hive Router, its agents report with their own
//! tokens, an approver approves its gate in governance, and it completes — every transition reaching the
//! subscriber in order; governance meters each completed task.

use std::time::Duration;

use e2e::Stack;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use crate::tenants_on_new_edition;

const TASKS: &str =
    "query($id: ID!) { workflowInstance(id: $id) { status tasks { id stepId status agentId fencingToken } } }";
const COMPLETE: &str = "mutation($input: CompleteAgentTaskInput!) { completeAgentTask(input: $input) { status } }";

/// The subscription client's next line, as JSON.
async fn next(lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    serde_json::from_str::<Value>(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_workflow_runs_through_the_router_with_its_transitions_streamed_live() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("wf-{}", stack.id);
    tenants_on_new_edition(&stack, &hive, &[&tenant], "Workflow Co").await;
    let member = stack.member_token(&tenant);
    let admin = stack.token(&tenant, "admin", &["identity:read", "identity:write"]);

    // Identity: the reviewer role the registry's gate names, an approver holding it, and an agent.
    stack
        .ok(&hive.url, &admin, "mutation { defineRole(input: { key: \"content-reviewer\", permissions: [\"approvals:decide\", \"governance:read\"] }) { key } }", json!({}))
        .await;
    let v = stack
        .ok(&hive.url, &admin, "mutation { createPrincipal(input: { displayName: \"Rita\", kind: USER, email: \"rita@example.com\" }) { id } }", json!({}))
        .await;
    let rita = v["createPrincipal"]["id"].as_str().unwrap().to_owned();
    stack
        .ok(
            &hive.url,
            &admin,
            "mutation($p: ID!) { bindRole(principalId: $p, roleKey: \"content-reviewer\") }",
            json!({ "p": rita }),
        )
        .await;
    let approver = stack.token(&tenant, &rita, &["approvals:decide", "governance:read"]);
    let agent_id = test_support::principal("agent-1");
    let agent = stack.token(&tenant, &agent_id, &["agent:report"]);

    // Workflow: the pools the registry's steps name, then an instance of `content-review`.
    for pool in ["writers", "publishers"] {
        stack
            .ok(
                &hive.url,
                &member,
                "mutation($p: String!, $a: [String!]!) { configureAgentPool(input: { pool: $p, agents: $a }) { pool } }",
                json!({ "p": pool, "a": [agent_id] }),
            )
            .await;
    }
    // Governance: the model policy the agents work under, which workflow learns from its event.
    let governor = stack.token(&tenant, "governor", &["governance:read", "governance:write"]);
    let v = stack
        .ok(
            &hive.url,
            &governor,
            "mutation { draftModelPolicy(input: { name: \"agents\", allowed: [{ provider: \"openai\", models: [\"*\"] }], maxTokensPerTask: 20000 }) { id } }",
            json!({}),
        )
        .await;
    let policy = v["draftModelPolicy"]["id"].clone();
    let publish = "mutation($id: ID!) { publishModelPolicy(id: $id) { status } }";
    stack.ok(&hive.url, &governor, publish, json!({ "id": policy })).await;
    let workflow_db = stack.workflow().admin_pool().await;
    test_support::eventually("workflow to know the model policy", Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM model_policies WHERE tenant_id = $1)")
            .bind(&tenant)
            .fetch_one(&workflow_db)
            .await
            .unwrap()
    })
    .await;
    let v = stack
        .ok(
            &hive.url,
            &member,
            "mutation { startWorkflow(input: { definitionKey: \"content-review\", platform: true, input: { title: \"Launch post\" } }) { id status } }",
            json!({}),
        )
        .await;
    let id = v["startWorkflow"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["startWorkflow"]["status"], "AWAITING_AGENT");

    // Watch it: the current state, then each transition (ten states in all).
    e2e::ensure_node_tools().await;
    let mut client = tokio::process::Command::new("node")
        .arg(e2e::repo().join("router/ws-client.mjs"))
        .arg(&hive.ws_url)
        .arg(&member)
        .arg("subscription($id: ID!) { processState(instanceId: $id) { status version } }")
        .arg(json!({ "id": id }).to_string())
        .arg("10")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut lines = tokio::io::BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(next(&mut lines).await, json!({ "connected": true }));
    let first = next(&mut lines).await;
    assert_eq!(first["data"]["processState"], json!({ "status": "AWAITING_AGENT", "version": 3 }), "{first}");

    let complete = |step: &'static str| {
        let (stack, hive, member, agent, id) = (&stack, &hive, member.clone(), agent.clone(), id.clone());
        async move {
            let task = test_support::eventually_value(&format!("{step} assigned"), Duration::from_secs(20), || async {
                let v = stack.ok(&hive.url, &member, TASKS, json!({ "id": id })).await;
                let tasks = v["workflowInstance"]["tasks"].as_array()?.clone();
                tasks.into_iter().find(|t| t["stepId"] == step && t["status"] == "ASSIGNED")
            })
            .await;
            let input = json!({ "input": { "taskId": task["id"], "fencingToken": task["fencingToken"],
                "provider": "openai", "model": "gpt-5", "tokens": 1500, "durationMs": 1200 } });
            let v = stack.ok(&hive.url, &agent, COMPLETE, input).await;
            assert_eq!(v["completeAgentTask"]["status"], "COMPLETED");
        }
    };
    complete("draft").await;

    // The gate: governance opened the request (through the RequestApproval command); Rita approves it.
    let approval =
        test_support::eventually_value("governance to open the gate's request", Duration::from_secs(20), || async {
            let v = stack
                .ok(
                    &hive.url,
                    &approver,
                    "{ approvals(status: PENDING) { nodes { id subjectKind subjectId } } }",
                    json!({}),
                )
                .await;
            v["approvals"]["nodes"].as_array().unwrap().iter().find(|n| n["subjectKind"] == "workflow.Gate").cloned()
        })
        .await;
    assert!(approval["subjectId"].as_str().unwrap().starts_with(&id), "{approval}");
    let approved =
        test_support::eventually_value("Rita's role to reach governance", Duration::from_secs(20), || async {
            let v = stack
                .post(
                    &hive.url,
                    &approver,
                    &[],
                    "mutation($id: ID!) { approve(id: $id, note: \"ship it\") { status } }",
                    json!({ "id": approval["id"] }),
                )
                .await;
            v["data"]["approve"]["status"].as_str().map(str::to_owned)
        })
        .await;
    assert_eq!(approved, "APPROVED");
    complete("publish").await;

    // Every transition, in order, one version at a time, to the end.
    let mut statuses = Vec::new();
    for version in 4..=12 {
        let m = next(&mut lines).await;
        let s = &m["data"]["processState"];
        assert_eq!(s["version"], version, "in order, none skipped: {m}");
        statuses.push(s["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        statuses,
        [
            "RUNNING",
            "RUNNING",
            "AWAITING_APPROVAL",
            "AWAITING_APPROVAL",
            "RUNNING",
            "ASSIGNING_TASK",
            "AWAITING_AGENT",
            "RUNNING",
            "COMPLETED"
        ]
    );
    let status = tokio::time::timeout(Duration::from_secs(10), client.wait()).await.unwrap().unwrap();
    assert!(status.success());

    // Governance metered both tasks' tokens.
    let usage =
        "query($from: DateTime!, $to: DateTime!) { usage(meter: \"model-tokens\", from: $from, to: $to) { quantity } }";
    let (from, to) = (chrono::Utc::now() - chrono::Duration::hours(1), chrono::Utc::now() + chrono::Duration::hours(1));
    let reader = stack.token(&tenant, "reader", &["governance:read"]);
    test_support::eventually("the tasks' tokens metered", Duration::from_secs(20), || async {
        let v = stack.ok(&hive.url, &reader, usage, json!({ "from": from, "to": to })).await;
        v["usage"]["quantity"] == json!(3000)
    })
    .await;
    hive.stop().await;
    stack.stop().await;
}
