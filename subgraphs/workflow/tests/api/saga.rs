//! The saga through the API: the full path (an agent task, an approval gate, a parallel branch with a
//! timeout and a retry beside a wait, the join, a failure unwinding through a compensation), fenced agent
//! reports, Redis losing the leases, idempotent assignment, usage metered once per task, commands from
//! other domains, and bad input refused with nothing written. Time is stepped: timers are fired with a
//! clock the test passes (`saga::timers::fire_due`), never slept for.

use std::time::Duration;

use chrono::Utc;
use kernel::contracts::governance::{ApprovalGranted, ApprovalSubject};
use kernel::envelope::{Envelope, Event, EventMeta};
use kernel::TenantId;
use serde_json::{json, Value};
use test_support::code;
use workflow::saga::engine::{request_id, GATE};

use crate::helpers::{self, app, member, skill_published, tenant, App};

const PUBLISH: &str =
    "mutation($input: PublishWorkflowDefinitionInput!) { publishWorkflowDefinition(input: $input) { version } }";
const POOL: &str = "mutation($input: ConfigureAgentPoolInput!) { configureAgentPool(input: $input) { pool agents concurrency leaseTtlSeconds } }";
const START: &str = "mutation($input: StartWorkflowInput!) { startWorkflow(input: $input) { id status version } }";
const INSTANCE: &str = "query($id: ID!) { workflowInstance(id: $id) { id status version steps { stepId state }
    tasks { id stepId attempt compensation skill agentId fencingToken status } } }";
const HISTORY: &str = "query($id: ID!) { workflowInstance(id: $id) { history(first: 500) { version type data } } }";
const PROGRESS: &str =
    "mutation($input: AgentTaskProgressInput!) { reportAgentTaskProgress(input: $input) { id percent fencingToken } }";
const COMPLETE: &str = "mutation($input: CompleteAgentTaskInput!) { completeAgentTask(input: $input) { id status outputs { artifactId } } }";
const FAIL: &str = "mutation($input: FailAgentTaskInput!) { failAgentTask(input: $input) { id status } }";

/// A token of agent `agent` of tenant `t` (its subject is the agent's id, as the pools name agents).
fn agent_token(app: &App, t: &str, agent: &str) -> String {
    let scopes = ["agent:report"];
    app.signer.mint(test_support::ISSUER, test_support::AUDIENCE, agent, Some(t), &scopes, Duration::from_secs(600))
}

/// Publishes `steps` as the tenant's definition `key`, after catalogue announced every skill they name.
async fn define(app: &App, token: &str, t: &str, key: &str, mut steps: Value, skills: &[&str]) {
    for s in skills {
        skill_published(app, t, s, "1.0.0").await;
    }
    for s in steps.as_array_mut().unwrap() {
        let ty = s["type"].as_str().unwrap().replace("AgentTask", "AGENT_TASK").to_uppercase();
        s["type"] = json!(ty);
    }
    let input = json!({ "input": { "key": key, "name": key, "start": steps[0]["id"], "steps": steps } });
    app.ok(token, PUBLISH, input).await;
}

async fn pool(app: &App, token: &str, name: &str, agents: &[&str], ttl: i32) {
    let input = json!({ "pool": name, "agents": agents, "concurrency": 1, "leaseTtlSeconds": ttl });
    app.ok(token, POOL, json!({ "input": input })).await;
}

async fn start(app: &App, token: &str, key: &str) -> String {
    let v = app.ok(token, START, json!({ "input": { "definitionKey": key, "input": { "title": "hello" } } })).await;
    v["startWorkflow"]["id"].as_str().unwrap().to_owned()
}

async fn instance(app: &App, token: &str, id: &str) -> Value {
    app.ok(token, INSTANCE, json!({ "id": id })).await["workflowInstance"].clone()
}

async fn history_types(app: &App, token: &str, id: &str) -> Vec<String> {
    let v = app.ok(token, HISTORY, json!({ "id": id })).await;
    v["workflowInstance"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

/// The live (assigned) task of `step`: its id, its fencing token, and the agent holding it.
async fn live_task(app: &App, token: &str, id: &str, step: &str) -> (String, i64, String) {
    let i = instance(app, token, id).await;
    let task = i["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["stepId"] == step && t["status"] == "ASSIGNED")
        .unwrap_or_else(|| panic!("no assigned task of `{step}`: {i}"))
        .clone();
    let text = |k: &str| task[k].as_str().unwrap().to_owned();
    (text("id"), task["fencingToken"].as_i64().unwrap(), text("agentId"))
}

fn complete_input(task: &str, token: i64) -> Value {
    json!({ "input": { "taskId": task, "fencingToken": token, "provider": "openai", "model": "gpt-5", "tokens": 1200, "durationMs": 900,
        "outputs": [{ "artifactId": "doc-1", "version": "1.0.0", "contentHash": format!("sha256:{}", "ab".repeat(32)) }] } })
}

async fn fire(app: &App, after: chrono::Duration) {
    workflow::saga::timers::fire_due(&app.state.kernel, Utc::now() + after).await.unwrap();
}

/// The key of the gate `step` asked governance about (the subject of its `RequestApproval`).
async fn gate_key(app: &App, id: &str, step: &str) -> String {
    sqlx::query_scalar(
        "SELECT data->>'approvalKey' FROM workflow_events \
          WHERE instance_id = $1::uuid AND event_type = 'ApprovalRequested' AND data->>'stepId' = $2 \
          ORDER BY version DESC LIMIT 1",
    )
    .bind(id)
    .bind(step)
    .fetch_one(&app.admin_pool().await)
    .await
    .unwrap()
}

/// Governance granting the gate `key` as its consumer would publish it, answering the command `cause`.
async fn grant(app: &App, t: &str, key: &str, cause: &str, by: &str) {
    let granted = ApprovalGranted {
        approval_id: uuid::Uuid::now_v7().into(),
        subject: ApprovalSubject { kind: GATE.into(), id: key.to_owned(), project_id: None },
        decided_by: vec![by.into()],
        note: None,
    };
    let meta = EventMeta {
        trace_id: "t".into(),
        correlation_id: "c".into(),
        causation_id: Some(cause.to_owned()),
        actor: None,
    };
    let env = Envelope::new(&TenantId::parse(t).unwrap(), &meta, &granted);
    helpers::publish_envelope(app, &ApprovalGranted::routing_key_to("workflow"), &env).await;
}

async fn wait_status(app: &App, token: &str, id: &str, status: &str) -> Value {
    test_support::eventually_value(&format!("instance {id} {status}"), Duration::from_secs(10), || async {
        let i = instance(app, token, id).await;
        (i["status"] == status).then_some(i)
    })
    .await
}

async fn outbox_count(app: &App, event_type: &str, like: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE event_type = $1 AND envelope::text LIKE $2")
        .bind(event_type)
        .bind(format!("%{like}%"))
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_full_path_through_a_gate_a_parallel_a_timeout_and_a_compensation() {
    let app = app().await;
    test_support::consuming(&format!("{}.approval-outcomes", app.command_prefix())).await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    let steps = json!([
        { "id": "draft", "type": "AgentTask", "skill": "draft", "pool": "writers", "next": "review",
          "compensation": { "skill": "retract" } },
        { "id": "review", "type": "Approval", "approverRoles": ["reviewer"], "quorum": 1, "approvalTtlHours": 24,
          "next": "checks" },
        { "id": "checks", "type": "Parallel", "branches": ["scan", "pause"], "join": "joined" },
        { "id": "scan", "type": "AgentTask", "skill": "scan", "pool": "writers", "next": "joined", "timeoutSeconds": 60,
          "retry": { "maxAttempts": 2, "initialBackoffSeconds": 5, "maxBackoffSeconds": 5 } },
        { "id": "pause", "type": "Wait", "waitSeconds": 30, "next": "joined" },
        { "id": "joined", "type": "Join", "next": "publish" },
        { "id": "publish", "type": "AgentTask", "skill": "publish", "pool": "writers" }
    ]);
    define(&app, &token, &t, "release", steps.clone(), &["draft", "retract", "scan", "publish"]).await;
    pool(&app, &token, "writers", &["w1", "w2"], 30).await;

    // Started: the draft is assigned at once.
    let id = start(&app, &token, "release").await;
    let i = instance(&app, &token, &id).await;
    assert_eq!(i["status"], "AWAITING_AGENT", "{i}");
    let (draft, draft_token, holder) = live_task(&app, &token, &id, "draft").await;
    let agent = agent_token(&app, &t, &holder);
    let v = app
        .ok(&agent, PROGRESS, json!({ "input": { "taskId": draft, "fencingToken": draft_token, "percent": 50 } }))
        .await;
    assert_eq!(v["reportAgentTaskProgress"]["percent"], 50);
    app.ok(&agent, COMPLETE, complete_input(&draft, draft_token)).await;

    // The gate asks governance, once, with a command whose id its answer must carry.
    let i = instance(&app, &token, &id).await;
    assert_eq!(i["status"], "AWAITING_APPROVAL", "{i}");
    let key = gate_key(&app, &id, "review").await;
    assert!(key.starts_with(&format!("{id}/review/")), "{key}");
    assert_eq!(outbox_count(&app, "RequestApproval", &key).await, 1);
    // An answer to another request about the gate (another causation) is ignored, and so is the starter's
    // own grant; governance's answer to the gate's command is taken, once.
    grant(&app, &t, &key, &uuid::Uuid::now_v7().to_string(), "rita").await;
    grant(&app, &t, &key, &request_id(&key), &test_support::tenant_subject(&t)).await;
    grant(&app, &t, &key, &request_id(&key), "rita").await;
    let i = wait_status(&app, &token, &id, "AWAITING_AGENT").await;
    let decided: Vec<Value> = sqlx::query_scalar(
        "SELECT data->'decidedBy' FROM workflow_events WHERE instance_id = $1::uuid AND event_type = 'ApprovalDecided'",
    )
    .bind(&id)
    .fetch_all(&app.admin_pool().await)
    .await
    .unwrap();
    assert_eq!(decided, [json!(["rita"])], "only the answer to the gate's own request, from another than the starter");
    let state = |i: &Value, step: &str| {
        i["steps"].as_array().unwrap().iter().find(|s| s["stepId"] == step).map(|s| s["state"].clone())
    };
    assert_eq!(state(&i, "review"), Some(json!("DONE")));
    assert_eq!(state(&i, "pause"), Some(json!("WAITING")));
    assert_eq!(state(&i, "scan"), Some(json!("AWAITING_AGENT")));
    let (scan1, scan1_token, holder) = live_task(&app, &token, &id, "scan").await;
    let scan1_agent = agent_token(&app, &t, &holder);

    // 61 s later: the wait is over and the scan's first attempt timed out; its retry waits out the backoff.
    fire(&app, chrono::Duration::seconds(61)).await;
    let i = instance(&app, &token, &id).await;
    assert_eq!(state(&i, "pause"), Some(json!("DONE")), "{i}");
    assert_eq!(state(&i, "scan"), Some(json!("WAITING")), "{i}");
    // The timed-out holder is fenced off: its report is refused and writes nothing.
    let before = i["version"].as_i64().unwrap();
    let v = app.gql(&scan1_agent, COMPLETE, complete_input(&scan1, scan1_token)).await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    assert_eq!(instance(&app, &token, &id).await["version"].as_i64().unwrap(), before);

    // After the backoff the second attempt runs; it completes, the join passes, the publication runs.
    fire(&app, chrono::Duration::seconds(67)).await;
    let (scan2, scan2_token, holder) = live_task(&app, &token, &id, "scan").await;
    let agent = agent_token(&app, &t, &holder);
    assert_ne!(scan2, scan1, "a new attempt is a new task");
    app.ok(&agent, COMPLETE, complete_input(&scan2, scan2_token)).await;
    let (publish, publish_token, holder) = live_task(&app, &token, &id, "publish").await;
    let agent = agent_token(&app, &t, &holder);

    // The publication fails (no retries): the completed draft is compensated, then the instance fails.
    let v = app
        .ok(
            &agent,
            FAIL,
            json!({ "input": { "taskId": publish, "fencingToken": publish_token, "reason": "registry down" } }),
        )
        .await;
    assert_eq!(v["failAgentTask"]["status"], "FAILED");
    let i = instance(&app, &token, &id).await;
    assert_eq!(i["status"], "COMPENSATING", "{i}");
    let retract = i["tasks"].as_array().unwrap().iter().find(|t| t["compensation"] == true).unwrap().clone();
    assert_eq!((retract["stepId"].as_str(), retract["skill"].as_str()), (Some("draft"), Some("retract")));
    let (retract_id, retract_token) = (retract["id"].as_str().unwrap(), retract["fencingToken"].as_i64().unwrap());
    let agent = agent_token(&app, &t, retract["agentId"].as_str().unwrap());
    app.ok(&agent, COMPLETE, complete_input(retract_id, retract_token)).await;
    let i = instance(&app, &token, &id).await;
    assert_eq!(i["status"], "FAILED", "{i}");

    let history = app.ok(&token, HISTORY, json!({ "id": id })).await["workflowInstance"]["history"].clone();
    crate::replay::record("full-path", &json!({ "start": "draft", "steps": steps }), &history);
    let types = history_types(&app, &token, &id).await;
    let expected = [
        "WorkflowInstanceStarted",
        "WorkflowStepReady",
        "AgentTaskAssigned",
        "AgentTaskProgressed",
        "AgentTaskCompleted",
        "WorkflowStepReady",
        "ApprovalRequested",
        "ApprovalDecided",
        "WorkflowStepCompleted",
        "WorkflowStepReady",
        "WorkflowStepCompleted",
        "WorkflowStepReady",
        "WorkflowStepReady",
        "AgentTaskAssigned",
        "TimerFired",
        "WorkflowStepCompleted",
        "TimerFired",
        "WorkflowStepRetryScheduled",
        "TimerFired",
        "WorkflowStepReady",
        "AgentTaskAssigned",
        "AgentTaskCompleted",
        "WorkflowStepReady",
        "WorkflowStepCompleted",
        "WorkflowStepReady",
        "AgentTaskAssigned",
        "AgentTaskFailed",
        "WorkflowStepFailed",
        "CompensationStarted",
        "AgentTaskAssigned",
        "AgentTaskCompleted",
        "WorkflowFailed",
    ];
    assert_eq!(types, expected);
    // Usage: tokens and time once per completed task (draft, scan, retract); nothing for the others.
    assert_eq!(outbox_count(&app, "UsageRecorded", "model-tokens").await, 3);
    assert_eq!(outbox_count(&app, "UsageRecorded", "agent-task-ms").await, 3);
    // Nothing left to fire, nothing left leased.
    let timers: i64 = sqlx::query_scalar("SELECT count(*) FROM timers WHERE subject = $1")
        .bind(&id)
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap();
    assert_eq!(timers, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_stale_token_is_refused_and_leases_lost_with_redis_are_reissued_with_higher_tokens() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    let steps = json!([{ "id": "draft", "type": "AgentTask", "skill": "draft", "pool": "writers" }]);
    define(&app, &token, &t, "solo", steps, &["draft"]).await;
    pool(&app, &token, "writers", &["w1"], 30).await;
    let agent = agent_token(&app, &t, "w1");
    let id = start(&app, &token, "solo").await;
    let (task, first, _) = live_task(&app, &token, &id, "draft").await;

    // Redis loses every lease (this test's namespace only); the lease check finds it gone.
    let keys = app.redis.keys().await;
    assert!(keys.iter().any(|k| k.contains("lease")), "a lease was taken: {keys:?}");
    let mut redis = app.state.kernel.cache.connection();
    for k in &keys {
        let _: () = redis::cmd("DEL").arg(k).query_async(&mut redis).await.unwrap();
    }
    fire(&app, chrono::Duration::seconds(31)).await;
    let (again, second, _) = live_task(&app, &token, &id, "draft").await;
    assert_eq!(again, task, "the same task, leased again");
    assert!(second > first, "a higher fencing token: {second} > {first}");
    let types = history_types(&app, &token, &id).await;
    assert_eq!(&types[types.len() - 2..], ["AgentTaskLeaseLost", "AgentTaskAssigned"]);

    // The old holder is fenced off: refused, nothing written.
    let before = instance(&app, &token, &id).await["version"].clone();
    for q in [PROGRESS, COMPLETE] {
        let input = if q == PROGRESS {
            json!({ "input": { "taskId": task, "fencingToken": first, "percent": 10 } })
        } else {
            complete_input(&task, first)
        };
        let v = app.gql(&agent, q, input).await;
        assert_eq!(code(&v), "CONFLICT", "{v}");
        assert_eq!(v["errors"][0]["extensions"]["latestToken"], second);
    }
    assert_eq!(instance(&app, &token, &id).await["version"], before);
    assert_eq!(outbox_count(&app, "UsageRecorded", &task).await, 0);

    // The new holder completes; sending the completion again answers the same and meters nothing more.
    app.ok(&agent, COMPLETE, complete_input(&task, second)).await;
    let v = app.ok(&agent, COMPLETE, complete_input(&task, second)).await;
    assert_eq!(v["completeAgentTask"]["status"], "COMPLETED");
    assert_eq!(instance(&app, &token, &id).await["status"], "COMPLETED");
    assert_eq!(outbox_count(&app, "UsageRecorded", &task).await, 2, "tokens and time, once");
    let history = app.ok(&token, HISTORY, json!({ "id": id })).await["workflowInstance"]["history"].clone();
    let steps = json!([{ "id": "draft", "type": "AgentTask", "skill": "draft", "pool": "writers" }]);
    crate::replay::record("lease-lost", &json!({ "start": "draft", "steps": steps }), &history);
    app.cleanup().await;
}

#[tokio::test]
async fn a_step_never_has_two_live_tasks_and_waits_for_a_free_agent() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    let agent = agent_token(&app, &t, "w1");
    let steps = json!([{ "id": "draft", "type": "AgentTask", "skill": "draft", "pool": "writers" }]);
    define(&app, &token, &t, "solo", steps, &["draft"]).await;
    pool(&app, &token, "writers", &["w1"], 30).await;

    // One agent, one slot: the first instance's task holds it, the second waits.
    let a = start(&app, &token, "solo").await;
    let b = start(&app, &token, "solo").await;
    assert_eq!(instance(&app, &token, &b).await["status"], "ASSIGNING_TASK");
    // Asking to assign b's task, many times at once: still one task, still waiting.
    const ASSIGN: &str = "mutation($i: ID!) { assignAgentTask(instanceId: $i, stepId: \"draft\") { id status } }";
    let asks = (0..4).map(|_| app.ok(&token, ASSIGN, json!({ "i": b })));
    let answers = futures::future::join_all(asks).await;
    let ids: std::collections::BTreeSet<String> =
        answers.iter().map(|v| v["assignAgentTask"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["assignAgentTask"]["status"], "UNASSIGNED");

    // a completes and frees the agent; b's task is offered again (its assignment timer) and taken.
    let (task, tok, _) = live_task(&app, &token, &a, "draft").await;
    app.ok(&agent, COMPLETE, complete_input(&task, tok)).await;
    fire(&app, chrono::Duration::seconds(3)).await;
    assert_eq!(instance(&app, &token, &b).await["status"], "AWAITING_AGENT");
    let assigned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM workflow_events WHERE instance_id = $1::uuid AND event_type = 'AgentTaskAssigned'",
    )
    .bind(&b)
    .fetch_one(&app.admin_pool().await)
    .await
    .unwrap();
    assert_eq!(assigned, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_coded_and_writes_nothing() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    let agent = agent_token(&app, &t, "w1");
    let steps = json!([{ "id": "draft", "type": "AgentTask", "skill": "draft", "pool": "writers" }]);
    define(&app, &token, &t, "solo", steps, &["draft"]).await;
    pool(&app, &token, "writers", &["w1"], 30).await;

    let v = app.gql(&token, START, json!({ "input": { "definitionKey": "nope" } })).await;
    assert_eq!(code(&v), "NOT_FOUND");
    let v = app.gql(&token, START, json!({ "input": { "definitionKey": "solo", "input": [1, 2] } })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let big = "x".repeat(70 * 1024);
    let v = app.gql(&token, START, json!({ "input": { "definitionKey": "solo", "input": { "big": big } } })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let streams: i64 =
        sqlx::query_scalar("SELECT count(*) FROM workflow_streams").fetch_one(&app.admin_pool().await).await.unwrap();
    assert_eq!(streams, 0, "nothing started");

    let id = start(&app, &token, "solo").await;
    let (task, tok, _) = live_task(&app, &token, &id, "draft").await;
    let before = instance(&app, &token, &id).await["version"].clone();
    let mut bad = complete_input(&task, tok);
    bad["input"]["outputs"][0]["contentHash"] = json!("md5:abc");
    assert_eq!(code(&app.gql(&agent, COMPLETE, bad).await), "BAD_USER_INPUT");
    let v =
        app.gql(&agent, PROGRESS, json!({ "input": { "taskId": task, "fencingToken": tok, "percent": 101 } })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    // Reports need `agent:report`; a member without it is refused.
    assert_eq!(code(&app.gql(&token, COMPLETE, complete_input(&task, tok)).await), "FORBIDDEN");
    // Another agent of the tenant may not report on it (the token alone is not enough); another tenant's
    // agent finds no such task.
    let intruder = agent_token(&app, &t, "w2");
    assert_eq!(code(&app.gql(&intruder, COMPLETE, complete_input(&task, tok)).await), "FORBIDDEN");
    let other = agent_token(&app, &tenant(&app, "globex"), "w1");
    assert_eq!(code(&app.gql(&other, COMPLETE, complete_input(&task, tok)).await), "NOT_FOUND");
    assert_eq!(instance(&app, &token, &id).await["version"], before);

    for (field, input) in [
        ("pool", json!({ "pool": "Bad Name", "agents": ["a"] })),
        ("agents", json!({ "pool": "p", "agents": [] })),
        ("agents", json!({ "pool": "p", "agents": ["a", "a"] })),
        ("concurrency", json!({ "pool": "p", "agents": ["a"], "concurrency": 0 })),
        ("leaseTtlSeconds", json!({ "pool": "p", "agents": ["a"], "leaseTtlSeconds": 0 })),
    ] {
        let v = app.gql(&token, POOL, json!({ "input": input })).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{field}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn governances_model_policies_decide_which_models_an_agent_task_may_use() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    let agent = agent_token(&app, &t, "w1");
    let steps = json!([{ "id": "draft", "type": "AgentTask", "skill": "draft", "pool": "writers" }]);
    define(&app, &token, &t, "solo", steps, &["draft"]).await;
    pool(&app, &token, "writers", &["w1"], 30).await;
    const TASK: &str =
        "query($id: ID!) { agentTask(id: $id) { status reason modelPolicies { policy allowed maxTokensPerTask } } }";

    // No model policy covers the task: it waits a while for one (workflow learns them from governance's
    // events, so a policy just published may be on its way), offered again every few seconds...
    let denied = start(&app, &token, "solo").await;
    let i = instance(&app, &token, &denied).await;
    assert_eq!(i["status"], "ASSIGNING_TASK", "{i}");
    let task = i["tasks"][0]["id"].as_str().unwrap().to_owned();
    let v = app.ok(&token, TASK, json!({ "id": task })).await["agentTask"].clone();
    assert_eq!(v["status"], "UNASSIGNED");
    assert!(v["reason"].as_str().unwrap().starts_with("waiting for a model policy"), "{v}");
    fire(&app, chrono::Duration::seconds(30)).await;
    assert_eq!(instance(&app, &token, &denied).await["status"], "ASSIGNING_TASK");
    // ...then, none having come, governance would deny every model: the attempt fails (the step has no
    // retries: the instance fails) — and no agent was ever leased.
    fire(&app, chrono::Duration::seconds(61)).await;
    wait_status(&app, &token, &denied, "FAILED").await;
    let v = app.ok(&token, TASK, json!({ "id": task })).await["agentTask"].clone();
    assert_eq!(v["status"], "FAILED");
    assert!(v["reason"].as_str().unwrap().starts_with("no model policy"), "{v}");
    assert!(!history_types(&app, &token, &denied).await.contains(&"AgentTaskAssigned".to_owned()));

    // A task waiting when a policy arrives is offered with it.
    let waiter = start(&app, &token, "solo").await;
    assert_eq!(instance(&app, &token, &waiter).await["status"], "ASSIGNING_TASK");
    // Two tenant-wide policies: both must allow the model, the tightest token limit applies; the task
    // carries them as its terms, and its agent sees them.
    helpers::model_policy(&app, &t, "base", &[("openai", &["*"]), ("anthropic", &["claude"])], Some(8_000)).await;
    helpers::model_policy(&app, &t, "lean", &[("openai", &["gpt-5", "gpt-4o"])], Some(2_000)).await;
    fire(&app, chrono::Duration::seconds(3)).await;
    let (task, tok, _) = live_task(&app, &token, &waiter, "draft").await;
    let v = app.ok(&token, TASK, json!({ "id": task })).await["agentTask"].clone();
    assert!(v["reason"].is_null(), "{v}");
    assert_eq!(v["modelPolicies"].as_array().unwrap().len(), 2, "{v}");
    app.ok(&agent, COMPLETE, complete_input(&task, tok)).await;
    wait_status(&app, &token, &waiter, "COMPLETED").await;
    let terms = |v: &Value| {
        let mut p: Vec<String> =
            v["modelPolicies"].as_array().unwrap().iter().map(|p| p["policy"].as_str().unwrap().to_owned()).collect();
        p.sort();
        p
    };
    let outside = |model: &str, tokens: i64, task: &str, tok: i64| {
        let mut input = complete_input(task, tok);
        input["input"]["model"] = json!(model);
        input["input"]["tokens"] = json!(tokens);
        input
    };
    let mut failures = Vec::new();
    for (model, tokens) in [("o1", 100), ("gpt-5", 2_001)] {
        let id = start(&app, &token, "solo").await;
        let (task, tok, _) = live_task(&app, &token, &id, "draft").await;
        let v = app.ok(&token, TASK, json!({ "id": task })).await["agentTask"].clone();
        assert_eq!(terms(&v), ["base@1", "lean@1"], "{v}");
        let lean = v["modelPolicies"].as_array().unwrap().iter().find(|p| p["policy"] == "lean@1").unwrap().clone();
        assert_eq!(
            lean,
            json!({ "policy": "lean@1", "allowed": ["openai/gpt-5", "openai/gpt-4o"], "maxTokensPerTask": 2000 })
        );
        // A completion outside them fails the attempt with the policy's reason; the usage was spent, so it
        // is metered all the same.
        let v = app.ok(&agent, COMPLETE, outside(model, tokens, &task, tok)).await;
        assert_eq!(v["completeAgentTask"]["status"], "FAILED", "{model}: {v}");
        let v = app.ok(&token, TASK, json!({ "id": task })).await["agentTask"].clone();
        failures.push(v["reason"].as_str().unwrap().to_owned());
        wait_status(&app, &token, &id, "FAILED").await;
        assert_eq!(outbox_count(&app, "UsageRecorded", &task).await, 2, "tokens and time, once");
    }
    assert!(failures[0].contains("lean@1 does not allow openai/o1"), "{failures:?}");
    assert!(failures[1].contains("2001 tokens exceed the limit of 2000"), "{failures:?}");

    // Within them: completed.
    let id = start(&app, &token, "solo").await;
    let (task, tok, _) = live_task(&app, &token, &id, "draft").await;
    let v = app.ok(&agent, COMPLETE, outside("gpt-4o", 2_000, &task, tok)).await;
    assert_eq!(v["completeAgentTask"]["status"], "COMPLETED", "{v}");
    wait_status(&app, &token, &id, "COMPLETED").await;

    // A deprecated version no longer decides: with `lean` gone, `base` alone allows o1.
    let lean: uuid::Uuid =
        sqlx::query_scalar("SELECT model_policy_id FROM model_policies WHERE tenant_id = $1 AND name = 'lean'")
            .bind(&t)
            .fetch_one(&app.admin_pool().await)
            .await
            .unwrap();
    let gone = kernel::contracts::governance::ModelPolicyDeprecated {
        model_policy_id: lean.into(),
        name: "lean".into(),
        version: 1,
    };
    helpers::publish(&app, &t, &gone).await;
    test_support::eventually("lean deprecated", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>("SELECT deprecated FROM model_policies WHERE tenant_id = $1 AND name = 'lean'")
            .bind(&t)
            .fetch_one(&app.admin_pool().await)
            .await
            .unwrap()
    })
    .await;
    let id = start(&app, &token, "solo").await;
    let (task, tok, _) = live_task(&app, &token, &id, "draft").await;
    let v = app.ok(&agent, COMPLETE, outside("o1", 5_000, &task, tok)).await;
    assert_eq!(v["completeAgentTask"]["status"], "COMPLETED", "{v}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_long_history_continues_as_a_new_instance_that_carries_what_it_must_compensate() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    for s in ["draft", "retract"] {
        skill_published(&app, &t, s, "1.0.0").await;
    }
    // A loop that never ends by itself: draft, pause, draft again — continuing as new after 10 events.
    let steps = json!([
        { "id": "draft", "type": "AgentTask", "skill": "draft", "pool": "writers", "next": "pause",
          "compensation": { "skill": "retract" } },
        { "id": "pause", "type": "Wait", "waitSeconds": 60, "next": "draft" }
    ]);
    let input = |after: i64| {
        let mut steps = steps.clone();
        steps[0]["type"] = json!("AGENT_TASK");
        steps[1]["type"] = json!("WAIT");
        json!({ "input": { "key": "poll", "name": "poll", "start": "draft", "steps": steps, "continueAsNewAfter": after } })
    };
    let v = app.gql(&token, PUBLISH, input(5)).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    assert_eq!(v["errors"][0]["extensions"]["field"], "continueAsNewAfter", "{v}");
    app.ok(&token, PUBLISH, input(10)).await;
    pool(&app, &token, "writers", &["w1"], 30).await;
    let agent = agent_token(&app, &t, "w1");

    // Two rounds: the second draft's completion is event 10, with nothing else in play — the instance
    // ends there and a new one goes on from `pause`.
    let a = start(&app, &token, "poll").await;
    let (task, tok, _) = live_task(&app, &token, &a, "draft").await;
    app.ok(&agent, COMPLETE, complete_input(&task, tok)).await;
    fire(&app, chrono::Duration::seconds(61)).await;
    let (task, tok, _) = live_task(&app, &token, &a, "draft").await;
    app.ok(&agent, COMPLETE, complete_input(&task, tok)).await;
    const LINKS: &str = "query($id: ID!) { workflowInstance(id: $id) { status version continuedAs continuedFrom } }";
    let old = app.ok(&token, LINKS, json!({ "id": a })).await["workflowInstance"].clone();
    assert_eq!(old["status"], "CONTINUED_AS_NEW", "{old}");
    assert_eq!(old["version"], 11);
    assert!(old["continuedFrom"].is_null());
    let b = old["continuedAs"].as_str().unwrap().to_owned();
    let new = app.ok(&token, LINKS, json!({ "id": b })).await["workflowInstance"].clone();
    assert_eq!(new, json!({ "status": "WAITING", "version": 2, "continuedAs": null, "continuedFrom": a }));
    let v = app.ok(&token, HISTORY, json!({ "id": b })).await;
    let started = v["workflowInstance"]["history"][0]["data"].clone();
    assert_eq!(started["startStep"], "pause");
    assert_eq!(started["completed"], json!(["pause", "draft"]), "each step once, at its last completion");
    assert_eq!(started["input"], json!({ "title": "hello" }));
    // The old instance is over: nothing of it is in play, and it cannot be cancelled.
    let timers: i64 = sqlx::query_scalar("SELECT count(*) FROM timers WHERE subject = $1")
        .bind(&a)
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap();
    assert_eq!(timers, 0);
    let cancel = "mutation($id: ID!) { cancelWorkflow(instanceId: $id, reason: \"stop\") { status } }";
    assert_eq!(code(&app.gql(&token, cancel, json!({ "id": a })).await), "CONFLICT");

    // The new instance goes on; a failure there compensates the draft the old one completed.
    fire(&app, chrono::Duration::seconds(61)).await;
    let (task, tok, _) = live_task(&app, &token, &b, "draft").await;
    let fail = json!({ "input": { "taskId": task, "fencingToken": tok, "reason": "no more news" } });
    app.ok(&agent, FAIL, fail).await;
    let (retract, tok, _) = live_task(&app, &token, &b, "draft").await;
    app.ok(&agent, COMPLETE, complete_input(&retract, tok)).await;
    let i = wait_status(&app, &token, &b, "FAILED").await;
    let compensated = i["tasks"].as_array().unwrap().iter().filter(|t| t["compensation"] == true).count();
    assert_eq!(compensated, 1, "{i}");

    let definition = json!({ "start": "draft", "steps": steps, "continueAsNewAfter": 10 });
    for (name, id) in [("continued-from", &a), ("continued-as", &b)] {
        let history = app.ok(&token, HISTORY, json!({ "id": id })).await["workflowInstance"]["history"].clone();
        crate::replay::record(name, &definition, &history);
    }
    // Both histories replay to the same decisions: continuing is a decision like any other.
    let replay = "mutation($i: ID!) { replayWorkflow(instanceId: $i) { matches decisionsChecked } }";
    for id in [&a, &b] {
        let v = app.ok(&token, replay, json!({ "i": id })).await["replayWorkflow"].clone();
        assert_eq!(v["matches"], true, "{id}: {v}");
    }
    app.cleanup().await;
}

/// A command as another domain sends it: its type and payload in the canonical envelope.
fn command(t: &str, command: &str, payload: Value) -> Envelope {
    let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
    let any = kernel::contracts::tenancy::TenantRetired { tenant_id: t.into() };
    let mut env = Envelope::new(&TenantId::parse(t).unwrap(), &meta, &any);
    env.event_type = command.into();
    env.payload = payload;
    env
}

#[tokio::test]
async fn other_domains_start_and_cancel_workflows_by_command_once() {
    let app = app().await;
    test_support::consuming(&format!("{}.commands", app.command_prefix())).await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    let steps = json!([{ "id": "pause", "type": "Wait", "waitSeconds": 60 }]);
    define(&app, &token, &t, "pause", steps, &[]).await;

    let start = kernel::contracts::workflow::StartWorkflow {
        definition_key: "pause".into(),
        version: None,
        platform: false,
        project_id: None,
        input: json!({ "from": "catalogue" }),
    };
    let env = command(&t, "StartWorkflow", serde_json::to_value(&start).unwrap());
    helpers::publish_envelope(&app, "catalogue.StartWorkflow", &env).await;
    helpers::publish_envelope(&app, "catalogue.StartWorkflow", &env).await; // delivered twice
    let admin = app.admin_pool().await;
    let id: String = test_support::eventually_value("the instance started", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, String>("SELECT instance_id::text FROM workflow_streams WHERE tenant_id = $1")
            .bind(&t)
            .fetch_optional(&admin)
            .await
            .unwrap()
    })
    .await;
    // The answer names the command as its cause.
    let cause: Option<String> = sqlx::query_scalar(
        "SELECT envelope->>'causationId' FROM outbox WHERE event_type = 'WorkflowInstanceStarted' AND tenant_id = $1",
    )
    .bind(&t)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(cause.as_deref(), Some(env.event_id.as_str()));

    let cancel = kernel::contracts::workflow::CancelWorkflow { instance_id: id.clone(), reason: "not needed".into() };
    let env = command(&t, "CancelWorkflow", serde_json::to_value(&cancel).unwrap());
    helpers::publish_envelope(&app, "catalogue.CancelWorkflow", &env).await;
    wait_status(&app, &token, &id, "CANCELLED").await;
    let streams: i64 = sqlx::query_scalar("SELECT count(*) FROM workflow_streams WHERE tenant_id = $1")
        .bind(&t)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(streams, 1, "started once");
    app.cleanup().await;
}

#[tokio::test]
async fn a_projects_workflows_and_the_entities_other_subgraphs_reference() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    let steps = json!([{ "id": "pause", "type": "Wait", "waitSeconds": 60 }]);
    define(&app, &token, &t, "pause", steps, &[]).await;
    let project = uuid::Uuid::now_v7().to_string();
    let mut ids = Vec::new();
    for p in [Some(project.as_str()), None] {
        let input = json!({ "input": { "definitionKey": "pause", "projectId": p } });
        ids.push(app.ok(&token, START, input).await["startWorkflow"]["id"].as_str().unwrap().to_owned());
    }
    // The projector reads below the oldest transaction in flight on the server (other tests' among them):
    // step it until it has applied both starts.
    let admin = app.admin_pool().await;
    test_support::eventually("both instances projected", Duration::from_secs(20), || async {
        app.step("process-state projector").await;
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM process_state").fetch_one(&admin).await.unwrap() == 2
    })
    .await;

    // Catalogue's Project, as the router asks workflow for its `workflows`.
    let entities = "query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Project { workflows { edges { node { id status } } } }
        ... on WorkflowInstance { id definitionKey status } } }";
    let reps = json!({ "r": [{ "__typename": "Project", "id": project }, { "__typename": "WorkflowInstance", "id": ids[1] }] });
    let v = app.ok(&token, entities, reps.clone()).await;
    let listed: Vec<&str> = v["_entities"][0]["workflows"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[0].as_str()], "only the project's own");
    assert_eq!(v["_entities"][1], json!({ "id": ids[1], "definitionKey": "pause", "status": "WAITING" }));
    let v = app
        .ok(
            &token,
            "query($p: ID) { workflowInstances(projectId: $p) { edges { node { id } } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(v["workflowInstances"]["edges"].as_array().unwrap().len(), 1);

    // A dashboard reads many at once (the projector's hot copies in Redis, the table for a miss); an
    // unknown id is left out.
    let many = "query($ids: [ID!]!) { processStates(ids: $ids) { id status } }";
    let unknown = uuid::Uuid::now_v7().to_string();
    let v = app.ok(&token, many, json!({ "ids": [ids[0], unknown, ids[1]] })).await;
    assert_eq!(
        v["processStates"],
        json!([{ "id": ids[0], "status": "WAITING" }, { "id": ids[1], "status": "WAITING" }])
    );
    let keys = app.redis.keys().await;
    assert_eq!(keys.iter().filter(|k| k.contains(":process-state:")).count(), 2, "{keys:?}");
    // An operator rebuilds the projection (rows and copies) from the events; a member may not.
    let rebuild = "mutation { rebuildProcessState }";
    assert_eq!(code(&app.gql(&token, rebuild, json!({})).await), "FORBIDDEN");
    let v = app.ok(&app.operator_token(), rebuild, json!({})).await;
    assert!(v["rebuildProcessState"].is_i64(), "{v}");
    // (The rebuild reads below the oldest transaction in flight on the server: later passes finish it.)
    test_support::eventually("the rebuilt projection holds both", Duration::from_secs(20), || async {
        app.step("process-state projector").await;
        let v = app.ok(&token, many, json!({ "ids": [ids[0], ids[1]] })).await;
        v["processStates"].as_array().unwrap().len() == 2
    })
    .await;

    // Another tenant sees neither.
    let other = member(&app, &tenant(&app, "globex"));
    let v = app.ok(&other, many, json!({ "ids": [ids[0], ids[1]] })).await;
    assert_eq!(v["processStates"], json!([]), "another tenant's instances are not among its states");
    let v = app.ok(&other, entities, json!({ "r": [reps["r"][0]] })).await;
    assert_eq!(v["_entities"][0]["workflows"]["edges"], json!([]), "{v}");
    let v = app.gql(&other, entities, json!({ "r": [reps["r"][1]] })).await;
    assert_eq!(code(&v), "NOT_FOUND");
    app.cleanup().await;
}
