//! Approvals: requests by command (once however often delivered) and by mutation; the requester never
//! decides its own request; approvers need one of the request's roles; N-of-M quorum; one rejection
//! rejects; expiry; outcome events carrying the subject and the request's correlation id.

use std::time::Duration;

use chrono::Utc;
use kernel::contracts::governance::{ApprovalRequest, ApprovalSubject};
use serde_json::{json, Value};
use test_support::Tap;

use crate::helpers::{code, spawn_app, spawn_app_expiring_fast, spawn_app_with_manual_workers, TestApp};

const DECIDE: &[&str] = &["governance:read", "approvals:decide"];

fn request(change: &str, quorum: u32, ttl: chrono::Duration) -> ApprovalRequest {
    ApprovalRequest {
        subject: ApprovalSubject {
            kind: "catalogue.EnvironmentChange".into(),
            id: change.into(),
            project_id: Some("p-1".into()),
        },
        summary: "prod: replicas 3 → 9".into(),
        approver_roles: vec!["release-approver".into(), "sre".into()],
        quorum,
        requested_by: test_support::principal("alice"),
        expires_at: Utc::now() + ttl,
        details: json!({ "environment": "prod", "config": { "replicas": 9 } }),
    }
}

/// Catalogue's `RequestApproval` command as catalogue sends it (its `projectId` beside the request).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogueRequest {
    project_id: String,
    #[serde(flatten)]
    request: ApprovalRequest,
}

impl kernel::envelope::Event for CatalogueRequest {
    const DOMAIN: &'static str = "catalogue";
    const TYPE: &'static str = "RequestApproval";
}

async fn approval_of(app: &TestApp, token: &str, subject: &str) -> Value {
    test_support::eventually_value(&format!("the request for {subject}"), Duration::from_secs(10), || async {
        let v = app.ok(token, "{ approvals(status: PENDING) { edges { node { id subjectId quorum approvals correlationId status } } } }", json!({})).await;
        v["approvals"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).find(|n| n["subjectId"] == subject)
    })
    .await
}

const APPROVE: &str = "mutation($id: ID!, $n: String) { approve(id: $id, note: $n) { status approvals votes { principal vote asRoles } } }";
const REJECT: &str = "mutation($id: ID!, $n: String) { reject(id: $id, note: $n) { status decisionNote } }";

#[tokio::test]
async fn a_request_by_command_is_granted_by_a_quorum_of_approvers_but_never_by_its_requester() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.approval-requests", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let mut outcomes = Tap::new("governance.#").await;
    let reader = app.member(&tenant);

    // Delivered twice (and re-sent under a new event id): one request.
    let cmd = CatalogueRequest { project_id: "p-1".into(), request: request("chg-1", 2, chrono::Duration::hours(1)) };
    let env = app.publish(&tenant, "catalogue.RequestApproval", &cmd).await;
    app.publish_envelope("catalogue.RequestApproval", &env).await;
    app.publish(&tenant, "catalogue.RequestApproval", &cmd).await;
    let a = approval_of(&app, &reader, "chg-1").await;
    assert_eq!((a["quorum"].as_i64(), a["approvals"].as_i64()), (Some(2), Some(0)));
    assert_eq!(a["correlationId"], env.correlation_id.as_str());
    let id = a["id"].as_str().unwrap().to_owned();

    app.bind_role(&tenant, "alice", "release-approver").await;
    app.bind_role(&tenant, "bob", "release-approver").await;
    app.bind_role(&tenant, "carol", "sre").await;
    let alice = app.as_principal(&tenant, "alice", DECIDE);
    let bob = app.as_principal(&tenant, "bob", DECIDE);
    let carol = app.as_principal(&tenant, "carol", DECIDE);
    let dave = app.as_principal(&tenant, "dave", DECIDE);
    let bob_without_scope = app.as_principal(&tenant, "bob", &["governance:read"]);

    let v = app.gql(&alice, APPROVE, json!({ "id": id })).await;
    assert_eq!(code(&v), "FORBIDDEN", "the requester cannot approve its own request, whatever its roles");
    let v = app.gql(&dave, APPROVE, json!({ "id": id })).await;
    assert_eq!(code(&v), "FORBIDDEN", "an approver needs one of the request's roles");
    let v = app.gql(&bob_without_scope, APPROVE, json!({ "id": id })).await;
    assert_eq!(code(&v), "FORBIDDEN", "and approvals:decide");

    let v = app.ok(&bob, APPROVE, json!({ "id": id })).await;
    assert_eq!(v["approve"]["status"], "PENDING", "1 of 2");
    assert_eq!(
        v["approve"]["votes"],
        json!([{ "principal": test_support::principal("bob"), "vote": "APPROVE", "asRoles": ["release-approver"] }])
    );
    let v = app.gql(&bob, APPROVE, json!({ "id": id })).await;
    assert_eq!(code(&v), "CONFLICT", "one vote per approver");
    let v = app.ok(&carol, APPROVE, json!({ "id": id, "n": "ship it" })).await;
    assert_eq!((v["approve"]["status"].as_str(), v["approve"]["approvals"].as_i64()), (Some("APPROVED"), Some(2)));

    let granted = outcomes.event("ApprovalGranted", &tenant, Duration::from_secs(10)).await;
    assert_eq!(
        granted["correlationId"],
        env.correlation_id.as_str(),
        "the answer carries the request's correlation id"
    );
    assert_eq!(
        granted["payload"]["subject"],
        json!({ "kind": "catalogue.EnvironmentChange", "id": "chg-1", "projectId": "p-1" })
    );
    assert_eq!(
        granted["payload"]["decidedBy"],
        json!([test_support::principal("bob"), test_support::principal("carol")])
    );
    assert_eq!(granted["payload"]["note"], "ship it");
    let v = app.gql(&dave, REJECT, json!({ "id": id })).await;
    assert!(matches!(code(&v), "CONFLICT" | "FORBIDDEN"), "{v}");
    let v = app.gql(&carol, REJECT, json!({ "id": id })).await;
    assert_eq!(code(&v), "CONFLICT", "a decided request is final");
    app.cleanup().await;
}

#[tokio::test]
async fn one_rejection_rejects_and_a_role_unbound_no_longer_counts() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.directory", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    // Addressed to whoever asked about `release.*` subjects: only their binding receives it.
    let mut outcomes = Tap::new("governance.ApprovalRejected.release").await;
    let requester = app.as_principal(&tenant, "alice", &["governance:read", "governance:write"]);
    let v = app
        .ok(
            &requester,
            "mutation($e: DateTime!) { requestApproval(input: { subjectKind: \"release.Gate\", subjectId: \"g-1\",
               summary: \"release 1.2\", approverRoles: [\"sre\"], quorum: 3, expiresAt: $e }) { id requestedBy status } }",
            json!({ "e": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339() }),
        )
        .await;
    assert_eq!(v["requestApproval"]["requestedBy"], test_support::principal("alice"));
    let id = v["requestApproval"]["id"].as_str().unwrap().to_owned();

    app.bind_role(&tenant, "erin", "sre").await;
    let unbound = kernel::contracts::identity::RoleUnbound {
        principal_id: test_support::principal("erin").parse().unwrap(),
        role_key: "sre".into(),
    };
    app.publish(&tenant, "identity.RoleUnbound", &unbound).await;
    let erin = app.as_principal(&tenant, "erin", DECIDE);
    test_support::eventually("erin's role to be gone", Duration::from_secs(10), || async {
        let v = app.gql(&erin, APPROVE, json!({ "id": id })).await;
        test_support::error_code(&v) == Some("FORBIDDEN")
    })
    .await;

    app.bind_role(&tenant, "frank", "sre").await;
    let frank = app.as_principal(&tenant, "frank", DECIDE);
    let v = app.ok(&frank, REJECT, json!({ "id": id, "n": "not today" })).await;
    assert_eq!(v["reject"], json!({ "status": "REJECTED", "decisionNote": "not today" }));
    let rejected = outcomes.event("ApprovalRejected", &tenant, Duration::from_secs(10)).await;
    assert_eq!(rejected["payload"]["subject"]["kind"], "release.Gate");
    assert_eq!(rejected["payload"]["decidedBy"], json!([test_support::principal("frank")]));
    app.cleanup().await;
}

/// The workers a subgraph declares run on their own; a test switches them off and steps one by name.
#[tokio::test]
async fn a_worker_switched_off_runs_only_when_the_test_steps_it() {
    let app = spawn_app_with_manual_workers().await;
    test_support::consuming(&format!("{}.approval-requests", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let mut outcomes = Tap::new("governance.ApprovalExpired.catalogue").await;
    let cmd = CatalogueRequest { project_id: "p-1".into(), request: request("chg-7", 1, chrono::Duration::seconds(1)) };
    app.publish(&tenant, "catalogue.RequestApproval", &cmd).await;
    let admin = app.admin_pool().await;
    let status = || async {
        sqlx::query_as::<_, (String, bool)>(
            "SELECT status, expires_at < now() FROM approvals WHERE tenant_id = $1 AND subject_id = 'chg-7'",
        )
        .bind(&tenant)
        .fetch_optional(&admin)
        .await
        .unwrap()
    };
    test_support::eventually("the request to be past its expiry", Duration::from_secs(10), || async {
        status().await.is_some_and(|(_, past)| past)
    })
    .await;
    assert_eq!(status().await.unwrap().0, "Pending", "no worker ran on its own");
    app.step("approval expiry").await;
    assert_eq!(status().await.unwrap().0, "Expired", "the step expired it");
    let expired = outcomes.event("ApprovalExpired", &tenant, Duration::from_secs(10)).await;
    assert_eq!(expired["payload"]["subject"]["id"], "chg-7");
    let unknown = kernel::service::step(&app.state, "no such worker").await.unwrap_err();
    assert_eq!(unknown.code(), kernel::Code::NotFound);
    app.cleanup().await;
}

#[tokio::test]
async fn a_request_nobody_decides_expires() {
    let app = spawn_app_expiring_fast().await;
    test_support::consuming(&format!("{}.approval-requests", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let mut outcomes = Tap::new("governance.ApprovalExpired.catalogue").await;
    let cmd = CatalogueRequest { project_id: "p-1".into(), request: request("chg-9", 1, chrono::Duration::seconds(2)) };
    let env = app.publish(&tenant, "catalogue.RequestApproval", &cmd).await;
    let expired = outcomes.event("ApprovalExpired", &tenant, Duration::from_secs(15)).await;
    assert_eq!(expired["payload"]["subject"]["id"], "chg-9");
    assert_eq!(expired["correlationId"], env.correlation_id.as_str());
    let reader = app.member(&tenant);
    let v = app.ok(&reader, "{ approvals { edges { node { status decidedAt } } } }", json!({})).await;
    assert_eq!(v["approvals"]["edges"][0]["node"]["status"], "EXPIRED");
    app.bind_role(&tenant, "bob", "sre").await;
    let id: String =
        sqlx::query_scalar("SELECT approval_id::text FROM approvals").fetch_one(&app.admin_pool().await).await.unwrap();
    let v = app.gql(&app.as_principal(&tenant, "bob", DECIDE), APPROVE, json!({ "id": id })).await;
    assert_eq!(code(&v), "CONFLICT");
    app.cleanup().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_codes_and_nothing_is_written() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let q = "mutation($k: String!, $r: [String!]!, $q: Int!, $e: DateTime!, $d: JSON) { requestApproval(input: {
               subjectKind: $k, subjectId: \"x\", summary: \"s\", approverRoles: $r, quorum: $q, expiresAt: $e, details: $d }) { id } }";
    let soon = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for (vars, field) in [
        (json!({ "k": "Gate", "r": ["sre"], "q": 1, "e": soon }), "subject.kind"),
        (json!({ "k": "workflow.Gate", "r": [], "q": 1, "e": soon }), "approverRoles"),
        (json!({ "k": "workflow.Gate", "r": ["sre"], "q": 0, "e": soon }), "quorum"),
        (json!({ "k": "workflow.Gate", "r": ["sre"], "q": 1, "e": "2001-01-01T00:00:00Z" }), "expiresAt"),
        (json!({ "k": "workflow.Gate", "r": ["sre"], "q": 1, "e": soon, "d": { "token": "hunter2" } }), "details"),
    ] {
        let v = app.gql(&t, q, vars).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{field}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field);
        assert!(!v.to_string().contains("hunter2"));
    }
    let v = app.gql(&t, "mutation { approve(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(code(&v), "FORBIDDEN", "deciding needs approvals:decide");
    let d = app.as_principal("acme", "bob", DECIDE);
    let v = app.gql(&d, "mutation { approve(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let v = app.gql(&d, "mutation($id: ID!) { approve(id: $id) { id } }", json!({ "id": uuid::Uuid::now_v7() })).await;
    assert_eq!(code(&v), "NOT_FOUND");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM approvals").fetch_one(&app.admin_pool().await).await.unwrap();
    assert_eq!(n, 0);
    app.cleanup().await;
}

/// Finding (High): `requestApproval` accepted any subject kind, so a requester could open its own request
/// about catalogue's pending prod change, with approver roles and a quorum of its choosing. Only a domain
/// asks about its own subjects, and only through its own prefix.
#[tokio::test]
async fn a_subject_is_asked_about_only_by_the_domain_it_belongs_to() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.approval-requests", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let requester = app.as_principal(&tenant, "mallory", &["governance:read", "governance:write"]);
    let soon = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let q = "mutation($k: String!, $e: DateTime!) { requestApproval(input: { subjectKind: $k, subjectId: \"chg-1\",
               summary: \"s\", approverRoles: [\"accomplice\"], quorum: 1, expiresAt: $e }) { id } }";
    for kind in ["catalogue.EnvironmentChange", "workflow.Gate", "lineage.Artifact", "governance.Policy"] {
        let v = app.gql(&requester, q, json!({ "k": kind, "e": soon })).await;
        assert_eq!(code(&v), "FORBIDDEN", "{kind}: {v}");
    }
    // A command published under workflow's prefix about a catalogue subject is dead-lettered, not opened;
    // the same under catalogue's own prefix is.
    let ch = kernel::broker::Broker::new(crate::helpers::AMQP.to_owned().into()).channel().await.unwrap();
    let dlq = format!("{}.approval-requests.dlq", app.command_prefix());
    let cmd = CatalogueRequest { project_id: "p-1".into(), request: request("chg-2", 1, chrono::Duration::hours(1)) };
    app.publish(&tenant, "workflow.RequestApproval", &cmd).await;
    let dead =
        test_support::eventually_value("the command on the dead-letter queue", Duration::from_secs(15), || async {
            ch.basic_get(&dlq, lapin::options::BasicGetOptions { no_ack: true }).await.unwrap()
        })
        .await;
    let headers = dead.delivery.properties.headers().clone().unwrap_or_default();
    let reason = match headers.inner().get("cs-dead-letter-reason") {
        Some(lapin::types::AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => format!("{other:?}"),
    };
    assert!(reason.contains("workflow asked for an approval of a catalogue subject"), "{reason}");
    let cmd = CatalogueRequest { project_id: "p-1".into(), request: request("chg-3", 1, chrono::Duration::hours(1)) };
    app.publish(&tenant, "catalogue.RequestApproval", &cmd).await;
    approval_of(&app, &app.member(&tenant), "chg-3").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM approvals").fetch_one(&app.admin_pool().await).await.unwrap();
    assert_eq!(n, 1, "only catalogue's own request was opened");
    app.cleanup().await;
}
