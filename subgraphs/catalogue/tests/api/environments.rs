//! Environments: changes apply at once outside prod; a prod change waits for governance's answer, applied
//! once on `ApprovalGranted` (however often delivered) and discarded on `ApprovalRejected`/`ApprovalExpired`.

use std::time::Duration;

use kernel::contracts::governance::{
    ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRejected, ApprovalSubject,
};
use kernel::envelope::Event;
use serde_json::{json, Value};
use test_support::Tap;

use crate::helpers::{code, spawn_app, TestApp};

const CHANGE: &str = "mutation($p: ID!, $n: EnvironmentName!, $c: JSON!) {
    changeEnvironment(projectId: $p, name: $n, config: $c, reason: \"scale up\") {
      change { id status baseVersion appliedVersion } environment { version config } } }";
const READ: &str = "query($p: ID!, $n: EnvironmentName!) { environment(projectId: $p, name: $n) { version config } }";

async fn read(app: &TestApp, t: &str, project: &str, name: &str) -> Value {
    app.ok(t, READ, json!({ "p": project, "n": name })).await["environment"].clone()
}

fn subject(change: &str, project: &str) -> ApprovalSubject {
    ApprovalSubject {
        kind: catalogue::events::ENVIRONMENT_CHANGE.into(),
        id: change.into(),
        project_id: Some(project.into()),
    }
}

async fn wait_status(app: &TestApp, change: &str, status: &str) {
    let admin = app.admin_pool().await;
    test_support::eventually(&format!("change {change} to become {status}"), Duration::from_secs(10), || async {
        let s: String = sqlx::query_scalar("SELECT status FROM environment_changes WHERE change_id = $1::uuid")
            .bind(change)
            .fetch_one(&admin)
            .await
            .unwrap();
        s == status
    })
    .await;
}

#[tokio::test]
async fn outside_prod_a_change_applies_at_once_and_the_cached_read_follows_it() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let p = app.project(&t, "shop").await;
    // A read caches the environment in Redis, under the tenant's key. The replica's change listener drops
    // every cached environment when it (re)subscribes, which at start-up may land just after a read: read
    // again until the entry stays.
    let key = format!("{}:{{acme}}:environment:{p}/dev", app.config.redis_namespace);
    let mut redis = app.state.kernel.cache.connection();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(read(&app, &t, &p, "dev").await, json!({ "version": 1, "config": {} }));
        let cached: Option<String> = redis::AsyncCommands::get(&mut redis, &key).await.unwrap();
        if cached.is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the read was never cached at {key}");
    }

    let v = app.ok(&t, CHANGE, json!({ "p": p, "n": "dev", "c": { "replicas": 3 } })).await;
    assert_eq!(v["changeEnvironment"]["change"]["status"], "APPLIED");
    assert_eq!(v["changeEnvironment"]["environment"], json!({ "version": 2, "config": { "replicas": 3 } }));
    // Read-your-writes: the cached copy was dropped after commit.
    assert_eq!(read(&app, &t, &p, "dev").await, json!({ "version": 2, "config": { "replicas": 3 } }));

    // Secrets only by reference; nothing written for a refused change.
    let v = app.gql(&t, CHANGE, json!({ "p": p, "n": "dev", "c": { "db": { "password": "hunter2" } } })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    assert!(!v.to_string().contains("hunter2"), "the value is never echoed: {v}");
    let v = app.gql(&t, CHANGE, json!({ "p": p, "n": "dev", "c": [1, 2] })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    assert_eq!(read(&app, &t, &p, "dev").await["version"], 2);
    app.cleanup().await;
}

#[tokio::test]
async fn a_prod_change_is_applied_once_after_approval_granted() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.approval-outcomes", app.command_prefix())).await;
    let mut requests = Tap::new("catalogue.RequestApproval").await;
    // A tenant of this test's own: the tap hears every test's RequestApproval.
    let tenant = format!("t-{}", app.id);
    let t = app.member(&tenant);
    let p = app.project(&t, "shop").await;

    let v = app.ok(&t, CHANGE, json!({ "p": p, "n": "prod", "c": { "replicas": 9 } })).await;
    let change = v["changeEnvironment"]["change"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["changeEnvironment"]["change"]["status"], "PENDING");
    assert_eq!(v["changeEnvironment"]["environment"]["version"], 1, "nothing applied yet");
    assert_eq!(read(&app, &t, &p, "prod").await["config"], json!({}));

    // Governance is asked, with the subject it must answer about.
    let request = requests.event("RequestApproval", &tenant, Duration::from_secs(10)).await;
    assert_eq!(request["projectId"], p.as_str());
    assert_eq!(
        request["payload"]["subject"],
        json!({ "kind": "catalogue.EnvironmentChange", "id": change, "projectId": p })
    );
    assert_eq!(request["payload"]["approverRoles"], json!(["release-approver"]));
    assert_eq!(request["payload"]["quorum"], 1);
    assert_eq!(request["payload"]["details"]["config"], json!({ "replicas": 9 }));

    // A second change to prod waits for the first.
    let v = app.gql(&t, CHANGE, json!({ "p": p, "n": "prod", "c": { "replicas": 1 } })).await;
    assert_eq!(code(&v), "CONFLICT");

    let granted = ApprovalGranted {
        approval_id: uuid::Uuid::from_u128(1).into(),
        subject: subject(&change, &p),
        decided_by: vec!["alice".into()],
        note: Some("ok".into()),
    };
    let rest = ApprovalGranted::routing_key_to("catalogue");
    let env = app.answer(&tenant, &change, &rest, &granted).await;
    app.publish_envelope(&rest, &env).await; // delivered twice
    wait_status(&app, &change, "Applied").await;
    // A late rejection of the same change changes nothing.
    let rejected = ApprovalRejected {
        approval_id: uuid::Uuid::from_u128(1).into(),
        subject: subject(&change, &p),
        decided_by: vec![],
        note: None,
    };
    app.answer(&tenant, &change, &ApprovalRejected::routing_key_to("catalogue"), &rejected).await;

    test_support::eventually("the cached prod read to show the change", Duration::from_secs(10), || async {
        read(&app, &t, &p, "prod").await == json!({ "version": 2, "config": { "replicas": 9 } })
    })
    .await;
    let admin = app.admin_pool().await;
    let (version, changed, status): (i32, i64, String) = sqlx::query_as(
        "SELECT (SELECT version FROM environments WHERE project_id = $1::uuid AND name = 'prod'),
                (SELECT count(*) FROM outbox WHERE event_type = 'EnvironmentChanged'),
                (SELECT status FROM environment_changes WHERE change_id = $2::uuid)",
    )
    .bind(&p)
    .bind(&change)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!((version, changed, status.as_str()), (2, 1, "Applied"), "applied exactly once");
    app.cleanup().await;
}

#[tokio::test]
async fn a_prod_change_is_discarded_when_rejected_or_expired() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.approval-outcomes", app.command_prefix())).await;
    let t = app.member("acme");
    let p = app.project(&t, "shop").await;
    let first = app.ok(&t, CHANGE, json!({ "p": p, "n": "prod", "c": { "a": 1 } })).await;
    let first = first["changeEnvironment"]["change"]["id"].as_str().unwrap().to_owned();
    let rejected = ApprovalRejected {
        approval_id: uuid::Uuid::from_u128(1).into(),
        subject: subject(&first, &p),
        decided_by: vec!["bob".into()],
        note: Some("not now".into()),
    };
    app.answer("acme", &first, &ApprovalRejected::routing_key_to("catalogue"), &rejected).await;
    wait_status(&app, &first, "Rejected").await;

    // Once decided, the environment takes a new request.
    let second = app.ok(&t, CHANGE, json!({ "p": p, "n": "prod", "c": { "a": 2 } })).await;
    let second = second["changeEnvironment"]["change"]["id"].as_str().unwrap().to_owned();
    let expired = ApprovalExpired { approval_id: uuid::Uuid::from_u128(2).into(), subject: subject(&second, &p) };
    app.answer("acme", &second, &ApprovalExpired::routing_key_to("catalogue"), &expired).await;
    wait_status(&app, &second, "Expired").await;

    // A grant arriving after the rejection changes nothing.
    let granted = ApprovalGranted {
        approval_id: uuid::Uuid::from_u128(1).into(),
        subject: subject(&first, &p),
        decided_by: vec![],
        note: None,
    };
    let env = app.answer("acme", &first, &ApprovalGranted::routing_key_to("catalogue"), &granted).await;
    let admin = app.admin_pool().await;
    test_support::eventually("the late grant to be consumed", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox WHERE event_id = $1")
            .bind(&env.event_id)
            .fetch_one(&admin)
            .await
            .unwrap()
            == 1
    })
    .await;
    let changes = app
        .ok(
            &t,
            "query($p: ID!) { environmentChanges(projectId: $p, name: prod) { status decisionNote } }",
            json!({ "p": p }),
        )
        .await;
    assert_eq!(
        changes["environmentChanges"],
        json!([{ "status": "EXPIRED", "decisionNote": null }, { "status": "REJECTED", "decisionNote": "not now" }])
    );
    assert_eq!(read(&app, &t, &p, "prod").await, json!({ "version": 1, "config": {} }));
    let discarded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE event_type = 'EnvironmentChangeDiscarded'")
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(discarded, 2);
    app.cleanup().await;
}

/// Finding (High): catalogue applied any `ApprovalGranted` naming a pending change. It now acts only on the
/// answer to the `RequestApproval` it sent, and never on a grant the requester voted for.
#[tokio::test]
async fn only_the_answer_to_catalogues_own_request_applies_a_prod_change() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.approval-outcomes", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let t = app.member(&tenant);
    let p = app.project(&t, "shop").await;
    let v = app.ok(&t, CHANGE, json!({ "p": p, "n": "prod", "c": { "replicas": 9 } })).await;
    let change = v["changeEnvironment"]["change"]["id"].as_str().unwrap().to_owned();
    let requester = test_support::tenant_subject(&tenant);
    let granted = |by: &str| ApprovalGranted {
        approval_id: uuid::Uuid::from_u128(10).into(),
        subject: subject(&change, &p),
        decided_by: vec![by.to_owned()],
        note: None,
    };
    let rest = ApprovalGranted::routing_key_to("catalogue");
    let admin = app.admin_pool().await;
    let consumed = |event_id: String| {
        let admin = admin.clone();
        async move {
            test_support::eventually("the outcome to be consumed", Duration::from_secs(10), || async {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox WHERE event_id = $1")
                    .bind(&event_id)
                    .fetch_one(&admin)
                    .await
                    .unwrap()
                    == 1
            })
            .await
        }
    };
    // The answer to another request about the same change (one opened through the API: no causation, or
    // another command's) is not this change's answer.
    let forged = app.publish(&tenant, &rest, &granted("mallory")).await;
    consumed(forged.event_id).await;
    let meta = kernel::envelope::EventMeta { causation_id: Some("evt-other".into()), ..Default::default() };
    let other = kernel::envelope::Envelope::new(&kernel::TenantId::parse(&tenant).unwrap(), &meta, &granted("mallory"));
    app.publish_envelope(&rest, &other).await;
    consumed(other.event_id).await;
    // A grant the requester voted for is no grant.
    let own = app.answer(&tenant, &change, &rest, &granted(&requester)).await;
    consumed(own.event_id).await;
    let status: String = sqlx::query_scalar("SELECT status FROM environment_changes WHERE change_id = $1::uuid")
        .bind(&change)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(status, "Pending", "no forged answer applied the change");
    assert_eq!(read(&app, &t, &p, "prod").await, json!({ "version": 1, "config": {} }));
    // The real answer applies it.
    app.answer(&tenant, &change, &rest, &granted("bob")).await;
    wait_status(&app, &change, "Applied").await;
    app.cleanup().await;
}

/// Approval outcomes are addressed to the domain that asked: one about another domain's subject travels
/// under that domain's routing key and never reaches catalogue's queue, so catalogue stores no inbox row
/// for it.
#[tokio::test]
async fn another_domains_approval_outcomes_never_reach_catalogue() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.approval-outcomes", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let theirs = ApprovalGranted {
        approval_id: uuid::Uuid::from_u128(20).into(),
        subject: ApprovalSubject { kind: "workflow.Gate".into(), id: "gate-1".into(), project_id: None },
        decided_by: vec![test_support::principal("bob")],
        note: None,
    };
    assert_eq!(theirs.routing_key_of(), "governance.ApprovalGranted.workflow");
    let theirs = app.publish(&tenant, &theirs.routing_key_of(), &theirs).await;
    // One addressed to catalogue, published after it, is consumed: the queue has nothing before it.
    let ours = ApprovalGranted {
        approval_id: uuid::Uuid::from_u128(21).into(),
        subject: subject(&uuid::Uuid::from_u128(22).to_string(), "p"),
        decided_by: vec![test_support::principal("bob")],
        note: None,
    };
    let ours = app.publish(&tenant, &ours.routing_key_of(), &ours).await;
    let admin = app.admin_pool().await;
    let inbox = |id: String| {
        let admin = admin.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox WHERE event_id = $1")
                .bind(id)
                .fetch_one(&admin)
                .await
                .unwrap()
        }
    };
    test_support::eventually("catalogue's own outcome to be consumed", Duration::from_secs(10), || async {
        inbox(ours.event_id.clone()).await == 1
    })
    .await;
    assert_eq!(inbox(theirs.event_id).await, 0, "workflow's outcome never reached catalogue");
    app.cleanup().await;
}

/// Finding (Medium): a cancelled approval left its prod change pending for good, and the environment
/// refused every later change. Governance's `ApprovalCancelled` now discards it.
#[tokio::test]
async fn a_cancelled_approval_frees_the_prod_environment() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.approval-outcomes", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let t = app.member(&tenant);
    let p = app.project(&t, "shop").await;
    let v = app.ok(&t, CHANGE, json!({ "p": p, "n": "prod", "c": { "a": 1 } })).await;
    let change = v["changeEnvironment"]["change"]["id"].as_str().unwrap().to_owned();
    assert_eq!(code(&app.gql(&t, CHANGE, json!({ "p": p, "n": "prod", "c": { "a": 2 } })).await), "CONFLICT");
    let cancelled = ApprovalCancelled {
        approval_id: uuid::Uuid::from_u128(1).into(),
        subject_kind: catalogue::events::ENVIRONMENT_CHANGE.into(),
        subject_id: change.clone(),
        cancelled_by: test_support::tenant_subject(&tenant),
    };
    app.answer(&tenant, &change, &ApprovalCancelled::routing_key_to("catalogue"), &cancelled).await;
    wait_status(&app, &change, "Cancelled").await;
    let v = app.ok(&t, CHANGE, json!({ "p": p, "n": "prod", "c": { "a": 2 } })).await;
    assert_eq!(v["changeEnvironment"]["change"]["status"], "PENDING", "the environment takes a new change");
    assert_eq!(read(&app, &t, &p, "prod").await, json!({ "version": 1, "config": {} }));
    app.cleanup().await;
}
