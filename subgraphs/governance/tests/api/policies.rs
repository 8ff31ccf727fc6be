//! Cedar policies through the API: permit, forbid and requires-approval with their reasons; refusal at
//! publication with a location; published versions immutable (API and trigger); the platform's policies
//! in every tenant's set; the compiled set following publications.

use serde_json::{json, Value};

use crate::helpers::{code, entity, spawn_app, TestApp};

const EVALUATE: &str = "query($r: PolicyRequestInput!) { evaluatePolicy(request: $r) {
    id effect policySetVersion policySetHash errors determiningPolicies { id name version effect } } }";

fn deploy(principal: &str, roles: &[&str], env: &str, attrs: Value) -> Value {
    let parents: Vec<(&str, &str)> = roles.iter().map(|r| ("Role", *r)).collect();
    let mut resource = entity("Environment", env, &[("Project", "shop")]);
    resource["attrs"] = attrs;
    json!({ "principal": entity("Principal", principal, &parents), "action": "deploy", "resource": resource })
}

async fn evaluate(app: &TestApp, token: &str, request: Value) -> Value {
    app.ok(token, EVALUATE, json!({ "r": request })).await["evaluatePolicy"].clone()
}

#[tokio::test]
async fn policies_permit_forbid_and_require_approval_with_their_reasons() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let allow = app
        .policy(
            &t,
            "devs-deploy",
            "ALLOW",
            "permit(principal in Role::\"dev\", action == Action::\"deploy\", resource);",
        )
        .await;
    let gate = app
        .policy(
            &t,
            "prod-gate",
            "REQUIRES_APPROVAL",
            "permit(principal in Role::\"dev\", action == Action::\"deploy\", resource == Environment::\"prod\");",
        )
        .await;
    let frozen = app
        .policy(
            &t,
            "freeze",
            "DENY",
            "forbid(principal, action == Action::\"deploy\", resource)\n  when { resource has name && resource.name == \"frozen\" };",
        )
        .await;

    let d = evaluate(&app, &t, deploy("alice", &["dev"], "staging", json!({}))).await;
    assert_eq!(d["effect"], "ALLOW");
    assert_eq!(
        d["determiningPolicies"],
        json!([{ "id": allow, "name": "devs-deploy", "version": 1, "effect": "ALLOW" }])
    );

    let d = evaluate(&app, &t, deploy("alice", &["dev"], "prod", json!({}))).await;
    assert_eq!(d["effect"], "REQUIRES_APPROVAL");
    let ids: Vec<&str> =
        d["determiningPolicies"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&gate.as_str()), "the annotated permit is among the reasons: {d}");

    let d = evaluate(&app, &t, deploy("alice", &["dev"], "x", json!({ "name": "frozen" }))).await;
    assert_eq!(d["effect"], "DENY");
    assert_eq!(d["determiningPolicies"][0]["id"], frozen.as_str(), "the forbid is the reason");

    let d = evaluate(&app, &t, deploy("mallory", &[], "staging", json!({}))).await;
    assert_eq!(
        (d["effect"].as_str(), d["determiningPolicies"].as_array().unwrap().len()),
        (Some("DENY"), 0),
        "default deny"
    );

    // Every evaluation was appended, with the set it used; a request outside the schema appends nothing.
    let set = app.ok(&t, "{ policySet { version hash policies } }", json!({})).await["policySet"].clone();
    assert_eq!(set["policies"], 3);
    assert_eq!(d["policySetVersion"], set["version"]);
    assert_eq!(d["policySetHash"], set["hash"]);
    let mut bad = deploy("alice", &["dev"], "staging", json!({}));
    bad["action"] = json!("fly");
    assert_eq!(code(&app.gql(&t, EVALUATE, json!({ "r": bad })).await), "BAD_USER_INPUT");
    let mut bad = deploy("alice", &["dev"], "staging", json!({}));
    bad["resource"] = entity("Model", "gpt", &[]);
    assert_eq!(
        code(&app.gql(&t, EVALUATE, json!({ "r": bad })).await),
        "BAD_USER_INPUT",
        "deploy does not apply to models"
    );
    let mut bad = deploy("alice", &["dev"], "staging", json!({}));
    bad["context"] = json!({ "costCents": "cheap" });
    assert_eq!(code(&app.gql(&t, EVALUATE, json!({ "r": bad })).await), "BAD_USER_INPUT");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions").fetch_one(&app.admin_pool().await).await.unwrap();
    assert_eq!(n, 4);
    let v = app.ok(&t, "{ decisions(first: 10) { edges { node { effect principal resource } } } }", json!({})).await;
    let effects: Vec<&str> =
        v["decisions"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["effect"].as_str().unwrap()).collect();
    assert_eq!(effects, ["DENY", "DENY", "REQUIRES_APPROVAL", "ALLOW"], "newest first");
    assert_eq!(v["decisions"]["edges"][3]["node"]["principal"], "Principal::\"alice\"");
    app.cleanup().await;
}

#[tokio::test]
async fn an_invalid_policy_is_refused_at_publication_with_its_location() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let draft = |cedar: &'static str, effect: &'static str| {
        let app = &app;
        let t = t.clone();
        async move {
            let v = app
                .ok(
                    &t,
                    "mutation($c: String!, $e: PolicyEffect!) { draftPolicy(input: { name: \"p\", effect: $e, cedar: $c }) { id version } }",
                    json!({ "c": cedar, "e": effect }),
                )
                .await;
            v["draftPolicy"]["id"].as_str().unwrap().to_owned()
        }
    };
    let publish = "mutation($id: ID!) { publishPolicy(id: $id) { status } }";

    // An attribute the schema does not declare, on line 2.
    let id = draft(
        "permit(principal, action == Action::\"deploy\", resource)\n  when { resource.owner == \"x\" };",
        "ALLOW",
    )
    .await;
    let v = app.gql(&t, publish, json!({ "id": id })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let err = &v["errors"][0];
    assert!(err["message"].as_str().unwrap().starts_with("invalid policy:"), "{v}");
    assert_eq!(err["extensions"]["location"]["line"], 2, "{v}");
    assert!(err["extensions"]["location"]["column"].as_u64().unwrap() >= 1);

    // A syntax error, an unknown action, and an effect that does not match the statement.
    for (cedar, effect) in [
        ("permit(principal, action, resource) when { 1 + };", "ALLOW"),
        ("permit(principal, action == Action::\"fly\", resource);", "ALLOW"),
        ("permit(principal, action, resource);", "DENY"),
    ] {
        let id = draft(cedar, effect).await;
        let v = app.gql(&t, publish, json!({ "id": id })).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{cedar}: {v}");
    }
    // Nothing was published: the set is empty, and the drafts are still drafts.
    let set = app.ok(&t, "{ policySet { policies } }", json!({})).await;
    assert_eq!(set["policySet"]["policies"], 0);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM policies WHERE status = 'Draft'")
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap();
    assert_eq!(n, 4);
    app.cleanup().await;
}

#[tokio::test]
async fn a_published_version_is_immutable_and_a_change_is_a_new_version() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let id = app.policy(&t, "readers", "ALLOW", "permit(principal, action == Action::\"read\", resource);").await;
    let v = app
        .gql(&t, "mutation($id: ID!) { updatePolicyDraft(id: $id, input: { cedar: \"forbid(principal, action, resource);\" }) { id } }", json!({ "id": id }))
        .await;
    assert_eq!(code(&v), "CONFLICT");
    let v = app.gql(&t, "mutation($id: ID!) { deletePolicyDraft(id: $id) }", json!({ "id": id })).await;
    assert_eq!(code(&v), "CONFLICT");
    let v = app.gql(&t, "mutation($id: ID!) { publishPolicy(id: $id) { id } }", json!({ "id": id })).await;
    assert_eq!(code(&v), "CONFLICT");

    // Not even the app role's SQL can change it: the trigger refuses.
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'acme', true)").execute(&mut *tx).await.unwrap();
    let e =
        sqlx::query("UPDATE policies SET cedar = 'forbid(principal, action, resource);' WHERE policy_id = $1::uuid")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert!(e.to_string().contains("immutable"), "{e}");
    drop(tx);

    // A change is the next version; deprecating the first takes it out of the set.
    let v = app
        .ok(&t, "mutation { draftPolicy(input: { name: \"readers\", effect: DENY, cedar: \"forbid(principal, action == Action::\\\"read\\\", resource);\" }) { id version } }", json!({}))
        .await;
    assert_eq!(v["draftPolicy"]["version"], 2);
    let v2 = v["draftPolicy"]["id"].as_str().unwrap().to_owned();
    app.ok(&t, "mutation($id: ID!) { publishPolicy(id: $id) { status } }", json!({ "id": v2 })).await;
    let v = app
        .ok(&t, "mutation($id: ID!) { deprecatePolicy(id: $id) { status deprecatedAt } }", json!({ "id": id }))
        .await;
    assert_eq!(v["deprecatePolicy"]["status"], "DEPRECATED");
    let v = app.gql(&t, "mutation($id: ID!) { deprecatePolicy(id: $id) { status } }", json!({ "id": id })).await;
    assert_eq!(code(&v), "CONFLICT", "deprecation is final");
    let r = json!({ "principal": entity("Principal", "a", &[]), "action": "read", "resource": entity("Project", "p", &[]) });
    let d = evaluate(&app, &t, r).await;
    assert_eq!(d["effect"], "DENY");
    assert_eq!(d["determiningPolicies"][0]["version"], 2);
    let v = app.ok(&t, "{ policies(name: \"readers\") { edges { node { version status } } } }", json!({})).await;
    assert_eq!(
        v["policies"]["edges"],
        json!([{ "node": { "version": 1, "status": "DEPRECATED" } }, { "node": { "version": 2, "status": "PUBLISHED" } }])
    );
    app.cleanup().await;
}

#[tokio::test]
async fn platform_policies_apply_to_every_tenant_and_only_operators_write_them() {
    let app = spawn_app().await;
    let op = app.operator_token();
    let (a, b) = (app.member("acme"), app.member("globex"));
    let r =
        json!({ "principal": entity("Principal", "x", &[]), "action": "use", "resource": entity("Model", "gpt", &[]) });
    assert_eq!(evaluate(&app, &a, r.clone()).await["effect"], "DENY");

    let v = app
        .gql(&a, "mutation { draftPolicy(input: { name: \"models\", effect: ALLOW, cedar: \"permit(principal, action, resource);\", platform: true }) { id } }", json!({}))
        .await;
    assert_eq!(code(&v), "FORBIDDEN", "a tenant cannot write platform policies");
    let v = app
        .ok(&op, "mutation { draftPolicy(input: { name: \"models\", effect: ALLOW, cedar: \"permit(principal, action == Action::\\\"use\\\", resource is Model);\", platform: true }) { id platform } }", json!({}))
        .await;
    assert_eq!(v["draftPolicy"]["platform"], true);
    let id = v["draftPolicy"]["id"].as_str().unwrap();
    // A tenant sees no platform draft; then the published one, in its set.
    let listed = app.ok(&a, "{ policies { edges { node { name platform } } } }", json!({})).await;
    assert_eq!(listed["policies"]["edges"], json!([]));
    app.ok(&op, "mutation($id: ID!) { publishPolicy(id: $id, platform: true) { status } }", json!({ "id": id })).await;
    for t in [&a, &b] {
        let d = evaluate(&app, t, r.clone()).await;
        assert_eq!(d["effect"], "ALLOW", "the platform's policy is in every tenant's set");
        assert_eq!(d["determiningPolicies"][0]["id"], id);
    }
    let listed = app.ok(&a, "{ policies { edges { node { name platform } } } }", json!({})).await;
    assert_eq!(listed["policies"]["edges"], json!([{ "node": { "name": "models", "platform": true } }]));
    app.cleanup().await;
}
