//! Decisions: append-only for the app role, kept seven years except under legal hold, and the
//! `EvaluatePolicy` command answered by `PolicyDecided` once however often it is delivered.

use std::time::Duration;

use governance::events::{EntityRef, EvaluatePolicy};
use kernel::contracts::tenancy::TenantLegalHoldChanged;
use serde_json::json;
use test_support::Tap;

use crate::helpers::{entity, spawn_app};

#[tokio::test]
async fn decisions_cannot_be_updated_or_deleted_by_the_app_role() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let r = json!({ "principal": entity("Principal", "a", &[]), "action": "read", "resource": entity("Project", "p", &[]) });
    let v =
        app.ok(&t, "query($r: PolicyRequestInput!) { evaluatePolicy(request: $r) { id } }", json!({ "r": r })).await;
    let id = v["evaluatePolicy"]["id"].as_str().unwrap().to_owned();

    for sql in [
        "UPDATE decisions SET effect = 'Allow' WHERE decision_id = $1::uuid",
        "DELETE FROM decisions WHERE decision_id = $1::uuid",
        "TRUNCATE decisions",
    ] {
        let mut tx = app.pool().begin().await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', 'acme', true)").execute(&mut *tx).await.unwrap();
        let e = sqlx::query(sql).bind(&id).execute(&mut *tx).await.unwrap_err();
        let db = e.as_database_error().expect("a database error");
        assert_eq!(db.code().as_deref(), Some("42501"), "{sql}: {e}");
    }
    // The owner role, too, is stopped by the trigger (only the retention function deletes).
    let owner = app.admin_pool().await;
    let e = sqlx::query("UPDATE decisions SET effect = 'Allow'").execute(&owner).await.unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let (effect,): (String,) = sqlx::query_as("SELECT effect FROM decisions WHERE decision_id = $1::uuid")
        .bind(&id)
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(effect, "Deny");
    app.cleanup().await;
}

#[tokio::test]
async fn retention_deletes_decisions_older_than_seven_years_except_under_legal_hold() {
    let app = spawn_app().await;
    let admin = app.admin_pool().await;
    test_support::consuming(&format!("{}.directory", app.command_prefix())).await;
    // Tenancy puts `held` on legal hold.
    app.publish(
        "held",
        "tenancy.TenantLegalHoldChanged",
        &TenantLegalHoldChanged { tenant_id: "held".into(), legal_hold: true },
    )
    .await;
    test_support::eventually("the legal hold to be projected", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>("SELECT on_hold FROM legal_holds WHERE tenant_id = 'held'")
            .fetch_optional(&admin)
            .await
            .unwrap()
            .unwrap_or(false)
    })
    .await;
    for (tenant, age) in [("acme", "8 years"), ("acme", "6 years"), ("held", "8 years")] {
        sqlx::query(
            "INSERT INTO decisions (tenant_id, decision_id, decided_at, principal, action, resource, policy_set_version,
                                    policy_set_hash, determining_policies, effect, trace_id, correlation_id)
             VALUES ($1, gen_random_uuid(), now() - $2::interval, 'Principal::\"a\"', 'read', 'Project::\"p\"', 0, '',
                     '{}', 'Deny', 't', 'c')",
        )
        .bind(tenant)
        .bind(age)
        .execute(&admin)
        .await
        .unwrap();
    }

    // (The worker's own pass at start-up may have got there first; either way one row goes.)
    let deleted = governance::decisions::retention::run_once(&app.state).await.unwrap();
    assert!(deleted <= 1);
    let left: Vec<(String, bool)> = sqlx::query_as(
        "SELECT tenant_id, decided_at < now() - interval '7 years' FROM decisions ORDER BY tenant_id, decided_at",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(left, vec![("acme".to_owned(), false), ("held".to_owned(), true)]);
    // Lifting the hold lets the next pass delete the held tenant's old decision.
    app.publish(
        "held",
        "tenancy.TenantLegalHoldChanged",
        &TenantLegalHoldChanged { tenant_id: "held".into(), legal_hold: false },
    )
    .await;
    test_support::eventually("the lifted hold to be projected", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>("SELECT on_hold FROM legal_holds WHERE tenant_id = 'held'")
            .fetch_optional(&admin)
            .await
            .unwrap()
            == Some(false)
    })
    .await;
    assert_eq!(governance::decisions::retention::run_once(&app.state).await.unwrap(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn the_evaluate_policy_command_appends_one_decision_and_answers_with_policy_decided() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.commands", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let t = app.member(&tenant);
    app.policy(&t, "run", "ALLOW", "permit(principal, action == Action::\"run\", resource is Workflow);").await;
    let mut tap = Tap::new("governance.PolicyDecided").await;
    let command = EvaluatePolicy {
        principal: EntityRef { entity_type: "Agent".into(), id: "builder".into(), parents: vec![] },
        action: "run".into(),
        resource: EntityRef { entity_type: "Workflow".into(), id: "release".into(), parents: vec![] },
        context: json!({}),
    };
    let env = app.publish(&tenant, "EvaluatePolicy", &command).await;
    app.publish_envelope("EvaluatePolicy", &env).await; // delivered twice
    let decided = tap.event("PolicyDecided", &tenant, Duration::from_secs(10)).await;
    assert_eq!(decided["payload"]["effect"], "Allow");
    assert_eq!(decided["correlationId"], env.correlation_id.as_str(), "answered under the command's correlation");
    assert_eq!(decided["causationId"], env.event_id.as_str());
    // The consumer takes deliveries in order: once a later command is answered, the duplicate was handled.
    let mut sentinel = command.clone();
    sentinel.action = "read".into();
    let later = app.publish(&tenant, "EvaluatePolicy", &sentinel).await;
    test_support::eventually_value("the later command's answer", Duration::from_secs(10), || {
        let admin = app.admin_pool();
        let corr = later.correlation_id.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions WHERE correlation_id = $1")
                .bind(corr)
                .fetch_one(&admin.await)
                .await
                .unwrap();
            (n == 1).then_some(())
        }
    })
    .await;
    let admin = app.admin_pool().await;
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM decisions WHERE action = 'run'").fetch_one(&admin).await.unwrap();
    assert_eq!(n, 1, "one decision for the command delivered twice");
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_evaluations_of_several_tenants_share_commits_and_each_keeps_its_own_decisions_and_events() {
    let app = spawn_app().await;
    let tenants = ["acme", "globex"];
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let tenant = tenants[i % 2];
            let token = app.member(tenant);
            let r = json!({
                "principal": entity("Principal", &format!("u{i}"), &[]),
                "action": "read",
                "resource": entity("Project", tenant, &[]),
            });
            let app = &app;
            async move {
                let v = app
                    .ok(
                        &token,
                        "query($r: PolicyRequestInput!) { evaluatePolicy(request: $r) { id } }",
                        json!({ "r": r }),
                    )
                    .await;
                (tenant, v["evaluatePolicy"]["id"].as_str().unwrap().to_owned())
            }
        })
        .collect();
    let answered = futures::future::join_all(calls).await;

    let admin = app.admin_pool().await;
    // Every answered decision is committed, under its own tenant, with its one `PolicyDecided` outbox row,
    // which names its actor (the caller) like every other event (the batch once wrote the outbox itself and
    // left the actor out).
    for (tenant, id) in &answered {
        let (owner, events, actors): (String, i64, Vec<Option<String>>) = sqlx::query_as(
            "SELECT d.tenant_id,
                    (SELECT count(*) FROM outbox o WHERE o.tenant_id = d.tenant_id
                        AND o.event_type = 'PolicyDecided' AND o.envelope->'payload'->>'decisionId' = $1),
                    ARRAY(SELECT o.actor FROM outbox o WHERE o.tenant_id = d.tenant_id
                        AND o.event_type = 'PolicyDecided' AND o.envelope->'payload'->>'decisionId' = $1)
             FROM decisions d WHERE d.decision_id = $1::uuid",
        )
        .bind(id)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!((owner.as_str(), events), (*tenant, 1), "decision {id}");
        assert_eq!(actors, vec![Some(test_support::tenant_subject(tenant))], "decision {id}");
    }
    let commits: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM decisions").fetch_one(&admin).await.unwrap();
    assert!(commits < 40, "40 decisions in {commits} transactions: concurrent evaluations share commits");
    // Through the API, each tenant reads its own 20.
    for tenant in tenants {
        let v =
            app.ok(&app.member(tenant), "{ decisions(first: 100) { edges { node { resource } } } }", json!({})).await;
        let edges = v["decisions"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 20, "{tenant}");
        assert!(edges.iter().all(|e| e["node"]["resource"] == format!("Project::\"{tenant}\"")), "{tenant}: {edges:?}");
    }
    app.cleanup().await;
}

/// Finding (Medium): a context string holding U+0000 passed Cedar and failed jsonb, and with it the whole
/// cross-tenant group commit. It is refused before evaluation, with a code, while the other tenant's
/// concurrent evaluations commit (the group commit also retries a failed batch item by item: kernel test).
#[tokio::test]
async fn a_nul_in_one_tenants_request_fails_that_request_only() {
    let app = spawn_app().await;
    let q = "query($r: PolicyRequestInput!) { evaluatePolicy(request: $r) { id } }";
    let request = |tenant: &str, context: serde_json::Value| {
        json!({ "r": {
            "principal": entity("Principal", "u", &[]),
            "action": "read",
            "resource": entity("Project", tenant, &[]),
            "context": context,
        } })
    };
    let (a, b) = (app.member("acme"), app.member("globex"));
    let poisoned = [json!({ "reason": "a\u{0}b" }), json!({ "labels": ["x", "\u{0}"] }), json!({ "k\u{0}": 1 })];
    let calls = poisoned.iter().map(|c| app.gql(&a, q, request("acme", c.clone())));
    let good = (0..6).map(|_| app.gql(&b, q, request("globex", json!({ "reason": "fine", "labels": ["x"] }))));
    let (bad, good) = tokio::join!(futures::future::join_all(calls), futures::future::join_all(good));
    for v in &bad {
        assert_eq!(crate::helpers::code(v), "BAD_USER_INPUT", "{v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains("NUL"), "{v}");
    }
    for v in &good {
        assert!(v.get("errors").is_none(), "{v}");
    }
    let admin = app.admin_pool().await;
    let (acme, globex): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE tenant_id = 'acme'), count(*) FILTER (WHERE tenant_id = 'globex') FROM decisions",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!((acme, globex), (0, 6));
    app.cleanup().await;
}
