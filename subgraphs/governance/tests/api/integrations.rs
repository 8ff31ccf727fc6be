//! Integration connections: secrets only by reference (every reference format parsed, inline secrets
//! refused), rotation as an event, `testIntegrationConnection` resolving through the secret store — and no secret value
//! anywhere: database, events, answers, error bodies or logs.

use std::time::Duration;

use serde_json::{json, Value};
use test_support::Tap;

use crate::helpers::{code, logs, spawn_app};

const CREATE: &str = "mutation($i: CreateIntegrationConnectionInput!) { createIntegrationConnection(input: $i) { id name kind secrets { name configRef } settings } }";
const TEST: &str = "mutation($id: ID!) { testIntegrationConnection(id: $id) { ok secrets { name configRef ok code message } connection { lastTestOk } } }";

#[tokio::test]
async fn no_secret_value_is_stored_published_returned_or_logged() {
    let app = spawn_app().await;
    let tenant = format!("t-{}", app.id);
    let t = app.member(&tenant);
    let mut tested = Tap::new("governance.IntegrationConnectionTested").await;
    let mut rotated = Tap::new("governance.IntegrationSecretRotated").await;
    // The secret lives in the environment; only its reference is given.
    let secret = format!("s3cret-{}", uuid::Uuid::new_v4().simple());
    // A tenant's env: secrets carry its prefix (CP_SECRET_<TENANT>__…); the server's own are out of reach.
    let var = format!("CP_SECRET_{}__GH_TOKEN", tenant.to_uppercase().replace('-', "_"));
    // SAFETY: tests in this binary read only their own, uniquely named variables.
    unsafe { std::env::set_var(&var, &secret) };
    let missing = format!("file:/run/secrets/tenants/{tenant}/missing");
    let input = json!({
        "name": "github", "kind": "GIT_HOSTING", "provider": "github",
        "settings": { "org": "acme", "appId": 42, "webhookSecret": "vault:secret/data/ci/github#webhook" },
        "secrets": [
            { "name": "token", "configRef": format!("env:{var}") },
            { "name": "signing", "configRef": "@Microsoft.KeyVault(VaultName=acme-vault;SecretName=gh-signing)" },
        ]
    });
    let v = app.ok(&t, CREATE, json!({ "i": input })).await;
    let c = &v["createIntegrationConnection"];
    assert_eq!(
        c["secrets"],
        json!([{ "name": "signing", "configRef": "keyvault:acme-vault/gh-signing" }, { "name": "token", "configRef": format!("env:{var}") }]),
        "references in their canonical form, in name order"
    );
    let id = c["id"].as_str().unwrap().to_owned();

    // The env secret resolves; Key Vault has no backend on this machine: a coded failure, no value either way.
    let v = app.ok(&t, TEST, json!({ "id": id })).await;
    let test = &v["testIntegrationConnection"];
    assert_eq!(test["ok"], false);
    assert_eq!(
        test["secrets"][1],
        json!({ "name": "token", "configRef": format!("env:{var}"), "ok": true, "code": null, "message": null })
    );
    assert_eq!(test["secrets"][0]["code"], "NO_SECRET_STORE");
    assert_eq!(test["connection"]["lastTestOk"], false);

    // Rotation: the Key Vault secret moves to a file that is missing: SECRET_UNAVAILABLE, named by reference.
    let v = app
        .ok(&t, "mutation($id: ID!, $r: String!) { rotateIntegrationSecret(id: $id, secret: { name: \"signing\", configRef: $r }) { secrets { name configRef } } }", json!({ "id": id, "r": missing }))
        .await;
    assert_eq!(v["rotateIntegrationSecret"]["secrets"][0]["configRef"], missing.as_str());
    let v = app.ok(&t, TEST, json!({ "id": id })).await;
    assert_eq!(v["testIntegrationConnection"]["secrets"][0]["code"], "SECRET_UNAVAILABLE");
    let rotation = rotated.event("IntegrationSecretRotated", &tenant, Duration::from_secs(10)).await;
    assert_eq!(rotation["payload"]["previousRef"], "keyvault:acme-vault/gh-signing");
    // Back to a reference that resolves: the connection tests ok.
    let v = app
        .ok(&t, "mutation($id: ID!, $r: String!) { rotateIntegrationSecret(id: $id, secret: { name: \"signing\", configRef: $r }) { id } }", json!({ "id": id, "r": format!("env:{var}") }))
        .await;
    assert!(v["rotateIntegrationSecret"]["id"].is_string());
    let v = app.ok(&t, TEST, json!({ "id": id })).await;
    assert_eq!(v["testIntegrationConnection"]["ok"], true);

    // Inline secrets and malformed references are refused, never echoed.
    for (bad, field) in [
        (json!({ "name": "ci", "kind": "CI", "provider": "github", "settings": { "apiToken": secret } }), "settings"),
        (
            json!({ "name": "ci", "kind": "CI", "provider": "github", "secrets": [{ "name": "token", "configRef": secret }] }),
            "configRef",
        ),
        (
            json!({ "name": "ci", "kind": "CI", "provider": "github", "secrets": [{ "name": "t", "configRef": "vault:secret" }] }),
            "configRef",
        ),
        (
            json!({ "name": "ci", "kind": "CI", "provider": "github", "secrets": [{ "name": "t", "configRef": "file:../x" }] }),
            "configRef",
        ),
        (json!({ "name": "ci", "kind": "CI", "provider": "github", "settings": [1] }), "settings"),
        (json!({ "name": "Bad Name", "kind": "CI", "provider": "github" }), "name"),
    ] {
        let v = app.gql(&t, CREATE, json!({ "i": bad })).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v}");
        assert!(!v.to_string().contains(&secret), "an error body echoed the secret: {v}");
    }
    let v = app.gql(&t, CREATE, json!({ "i": { "name": "github", "kind": "CI", "provider": "x" } })).await;
    assert_eq!(code(&v), "CONFLICT", "names are unique per tenant");

    // Nowhere: not in any table of the database, not in any event, not in any answer, not in the logs.
    let answer = app
        .ok(&t, "{ integrationConnections { edges { node { id settings secrets { configRef } } } } }", json!({}))
        .await;
    assert!(!answer.to_string().contains(&secret));
    let admin = app.admin_pool().await;
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT to_jsonb(t)::text FROM (SELECT * FROM integration_connections) t
         UNION ALL SELECT envelope::text FROM outbox",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(dump.iter().any(|row| row.contains("IntegrationConnectionTested")), "the dump saw the events");
    assert!(dump.iter().all(|row| !row.contains(&secret)), "a row holds the secret");
    let mut published: Vec<Value> = Vec::new();
    for _ in 0..3 {
        published.push(tested.event("IntegrationConnectionTested", &tenant, Duration::from_secs(10)).await);
    }
    assert!(published.iter().all(|e| !e.to_string().contains(&secret)));
    let captured = logs();
    assert!(captured.contains("connection tested"), "the log capture saw this test's work");
    assert!(!captured.contains(&secret), "the logs hold the secret");
    unsafe { std::env::remove_var(&var) };
    app.cleanup().await;
}

/// The finding: `acme`'s prefix was `CP_SECRET_ACME_`, a prefix of `acme-corp`'s `CP_SECRET_ACME_CORP_`, so
/// `acme` could name (and have an integration resolve) `acme-corp`'s secrets.
#[tokio::test]
async fn a_tenant_cannot_name_a_tenant_whose_slug_extends_its_own() {
    let app = spawn_app().await;
    let acme = format!("t-{}", app.id);
    let corp = format!("{acme}-corp");
    let (acme_enc, corp_enc) = (acme.to_uppercase().replace('-', "_"), corp.to_uppercase().replace('-', "_"));
    let secret = format!("corp-secret-{}", uuid::Uuid::new_v4().simple());
    let (old_form, new_form) = (format!("CP_SECRET_{corp_enc}_TOKEN"), format!("CP_SECRET_{corp_enc}__TOKEN"));
    // SAFETY: tests in this binary read only their own, uniquely named variables.
    unsafe {
        std::env::set_var(&old_form, &secret);
        std::env::set_var(&new_form, &secret);
    }
    let t = app.member(&acme);
    for var in [&old_form, &new_form] {
        let input = json!({ "name": "stolen", "kind": "CI", "provider": "x",
            "secrets": [{ "name": "token", "configRef": format!("env:{var}") }] });
        let v = app.gql(&t, CREATE, json!({ "i": input })).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{var}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], "configRef");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains(&format!("CP_SECRET_{acme_enc}__")), "{v}");
    }
    // The other tenant names its own under the new form.
    let c = app.member(&corp);
    let input = json!({ "name": "mine", "kind": "CI", "provider": "x",
        "secrets": [{ "name": "token", "configRef": format!("env:{new_form}") }] });
    let id = app.ok(&c, CREATE, json!({ "i": input })).await["createIntegrationConnection"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = app.ok(&c, TEST, json!({ "id": id })).await;
    assert_eq!(v["testIntegrationConnection"]["ok"], true, "{v}");

    // A reference stored before the fix (put in the table directly) is checked again and never resolved.
    let input = json!({ "name": "old", "kind": "CI", "provider": "x",
        "secrets": [{ "name": "token", "configRef": format!("env:CP_SECRET_{acme_enc}__TOKEN") }] });
    let id = app.ok(&t, CREATE, json!({ "i": input })).await["createIntegrationConnection"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.admin_pool().await;
    sqlx::query("UPDATE integration_connections SET secret_refs = $2 WHERE connection_id = $1::uuid")
        .bind(&id)
        .bind(json!({ "token": format!("env:{old_form}") }))
        .execute(&admin)
        .await
        .unwrap();
    let v = app.ok(&t, TEST, json!({ "id": id })).await;
    let test = &v["testIntegrationConnection"];
    assert_eq!(test["ok"], false, "{v}");
    assert_eq!(test["secrets"][0]["code"], "INVALID_REFERENCE", "{v}");
    assert!(!v.to_string().contains(&secret));
    unsafe {
        std::env::remove_var(&old_form);
        std::env::remove_var(&new_form);
    }
    app.cleanup().await;
}
