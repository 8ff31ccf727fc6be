//! Workflow's agent-task outputs become artifact versions: registered when new, `Generated`, made by the
//! task's agent and skill, under its trace and project — once however often the event is delivered, and an
//! output lineage cannot take is skipped without losing the others.

use std::time::Duration;

use kernel::broker::{Broker, EXCHANGE};
use kernel::contracts::workflow::{AgentTaskCompleted, ArtifactRef};
use kernel::envelope::{Envelope, Event, EventMeta};
use kernel::TenantId;
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use serde_json::json;

use crate::App;

async fn publish(app: &App, env: &Envelope) {
    let ch = Broker::new(test_support::AMQP_URL.to_owned().into()).channel().await.unwrap();
    let key = format!("{}.{}", app.command_prefix(), AgentTaskCompleted::routing_key());
    let body = serde_json::to_vec(env).unwrap();
    let props = BasicProperties::default().with_delivery_mode(2);
    ch.basic_publish(EXCHANGE, &key, BasicPublishOptions::default(), &body, props).await.unwrap().await.unwrap();
}

fn output(id: &str, version: &str, byte: u8) -> ArtifactRef {
    ArtifactRef {
        artifact_id: id.into(),
        version: version.into(),
        content_hash: format!("sha256:{}", format!("{byte:02x}").repeat(32)),
    }
}

#[tokio::test]
async fn an_agent_tasks_outputs_become_generated_versions_once() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read"]);
    test_support::consuming(&format!("{}.task-outputs", app.command_prefix())).await;
    let (task, project) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let completed = AgentTaskCompleted {
        instance_id: uuid::Uuid::now_v7().to_string(),
        task_id: task.to_string(),
        step_id: "draft".into(),
        compensation: false,
        // A good output, one with an id lineage does not allow, and another good one.
        outputs: vec![output("post-1", "1.0.0", 1), output("no/slashes", "1.0.0", 2), output("post-2", "0.1.0", 3)],
        agent_id: Some("agent-1".into()),
        skill: Some("draft-content".into()),
    };
    let meta = EventMeta { trace_id: "trace-42".into(), correlation_id: "c".into(), causation_id: None, actor: None };
    let mut env = Envelope::new(&TenantId::parse(&t).unwrap(), &meta, &completed);
    env.project_id = Some(project.to_string());
    // Delivered twice: recorded once.
    publish(&app, &env).await;
    publish(&app, &env).await;
    const Q: &str = "query($id: ID!) { artifact(id: $id) { artifactType projectId versions { edges { node {
        version status contentHash producedByAgentId producedBySkillId producedByTaskId traceId } } } } }";
    let post1 = test_support::eventually_value("post-1 recorded", Duration::from_secs(10), || async {
        let v = app.ok(&token, Q, json!({ "id": "post-1" })).await;
        (!v["artifact"].is_null()).then_some(v["artifact"].clone())
    })
    .await;
    assert_eq!(post1["artifactType"], "agent-output");
    assert_eq!(post1["projectId"], project.to_string());
    assert_eq!(
        post1["versions"]["edges"],
        json!([{ "node": {
        "version": "1.0.0", "status": "GENERATED", "contentHash": output("x", "1.0.0", 1).content_hash,
        "producedByAgentId": "agent-1", "producedBySkillId": "draft-content", "producedByTaskId": task.to_string(),
        "traceId": "trace-42" } }])
    );
    let post2 = test_support::eventually_value("post-2 recorded", Duration::from_secs(10), || async {
        let v = app.ok(&token, Q, json!({ "id": "post-2" })).await;
        (!v["artifact"].is_null()).then_some(v["artifact"].clone())
    })
    .await;
    assert_eq!(post2["versions"]["edges"][0]["node"]["version"], "0.1.0");
    // Workflow's AgentTask entity gets its output artifacts from lineage (batched per request); another
    // task produced nothing.
    let entities = "query($r: [_Any!]!) { _entities(representations: $r) { ... on AgentTask { outputArtifacts { artifactId version status } } } }";
    let reps = json!({ "r": [
        { "__typename": "AgentTask", "id": task.to_string() },
        { "__typename": "AgentTask", "id": uuid::Uuid::now_v7().to_string() },
    ] });
    let v = app.ok(&token, entities, reps).await["_entities"].clone();
    assert_eq!(
        v,
        json!([
            { "outputArtifacts": [
                { "artifactId": "post-1", "version": "1.0.0", "status": "GENERATED" },
                { "artifactId": "post-2", "version": "0.1.0", "status": "GENERATED" },
            ] },
            { "outputArtifacts": [] },
        ])
    );

    // A later task's output, delivered after the duplicate: once it is recorded, so was everything before
    // it — still one version and one event per output.
    let mut later = completed.clone();
    later.task_id = uuid::Uuid::now_v7().to_string();
    later.outputs = vec![output("post-3", "1.0.0", 4)];
    publish(&app, &Envelope::new(&TenantId::parse(&t).unwrap(), &meta, &later)).await;
    test_support::eventually_value("post-3 recorded", Duration::from_secs(10), || async {
        let v = app.ok(&token, Q, json!({ "id": "post-3" })).await;
        (!v["artifact"].is_null()).then_some(())
    })
    .await;
    let admin = app.admin_pool().await;
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM artifact_versions").fetch_one(&admin).await.unwrap();
    assert_eq!(versions, 3);
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE event_type = 'ArtifactVersionRecorded'")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(recorded, 3);
    app.cleanup().await;
}
