//! The live dashboard page (`clients/dashboard/public`, served by the edge at `/dashboard/`) in a real
//! browser — Debian's Chromium driven by playwright-core (`clients/dashboard/test/dashboard.mjs`) — against
//! the live supergraph through Hive Router: a change made through the API appears on the page within a
//! second, a workflow instance moves to COMPLETED on it, a pending approval approved from the page is
//! approved, the usage chart and the audit checkpoint are shown. The screenshot is kept at
//! `.ci/artifacts/dashboard.png` (CI's artifact).

use std::time::Duration;

use serde_json::json;

use e2e::Stack;

use crate::tenants_on_new_edition;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_changes_live_and_approves_from_the_page() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: `bash clients/dashboard/install-browser.sh` installs Debian's chromium"
    );
    e2e::ensure_npm("clients/dashboard", "playwright-core").await;
    // The page's graphql-ws is the pinned package's browser build, byte for byte.
    let dashboard = e2e::repo().join("clients/dashboard");
    assert_eq!(
        std::fs::read(dashboard.join("public/vendor/graphql-ws.min.js")).unwrap(),
        std::fs::read(dashboard.join("node_modules/graphql-ws/umd/graphql-ws.min.js")).unwrap(),
        "public/vendor/graphql-ws.min.js is not package.json's graphql-ws: copy it from node_modules/graphql-ws/umd"
    );
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("dash-{}", stack.id);
    tenants_on_new_edition(&stack, &hive, &[&tenant], "Dashboard Co").await;
    stack.audit(&["tenancy.#"]).await;

    // The page's user: a reviewer (the role governance's approvals name), watching the tenant.
    let admin = stack.token(&tenant, "admin", &["identity:read", "identity:write"]);
    let role = "mutation { defineRole(input: { key: \"reviewer\", permissions: [\"approvals:decide\", \"governance:read\"] }) { key } }";
    stack.ok(&hive.url, &admin, role, json!({})).await;
    let v = stack
        .ok(
            &hive.url,
            &admin,
            "mutation { createPrincipal(input: { displayName: \"Dana\", kind: USER }) { id } }",
            json!({}),
        )
        .await;
    let dana = v["createPrincipal"]["id"].as_str().unwrap().to_owned();
    let bind = "mutation($p: ID!) { bindRole(principalId: $p, roleKey: \"reviewer\") }";
    stack.ok(&hive.url, &admin, bind, json!({ "p": dana })).await;
    let scopes =
        ["tenancy:read", "tenancy:write", "workflow:read", "workflow:write", "governance:read", "approvals:decide"];
    let token = stack.token(&tenant, &dana, &scopes);
    let governance_db = stack.governance().admin_pool().await;
    test_support::eventually("governance to know Dana's role", Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM principal_roles WHERE tenant_id = $1 AND principal = $2 AND bound)",
        )
        .bind(&tenant)
        .bind(&dana)
        .fetch_one(&governance_db)
        .await
        .unwrap()
    })
    .await;

    // Something to approve (asked by someone else), and a workflow that completes on its own.
    let requester = stack.token(&tenant, "release-bot", &["governance:read", "governance:write"]);
    let v = stack
        .ok(
            &hive.url,
            &requester,
            "mutation($e: DateTime!) { requestApproval(input: { subjectKind: \"release.Gate\", subjectId: \"r-7\",
               summary: \"release 7\", approverRoles: [\"reviewer\"], quorum: 1, expiresAt: $e }) { id } }",
            json!({ "e": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339() }),
        )
        .await;
    let approval = v["requestApproval"]["id"].as_str().unwrap().to_owned();
    let publish = "mutation { publishWorkflowDefinition(input: { key: \"blink\", name: \"Blink\", start: \"pause\",
        steps: [{ id: \"pause\", type: WAIT, waitSeconds: 1 }] }) { version } }";
    stack.ok(&hive.url, &token, publish, json!({})).await;

    // Usage over the last hours, for the chart.
    let meter = stack.token(&tenant, "meter", &["usage:record"]);
    let now = chrono::Utc::now();
    let records: Vec<_> = (0..3)
        .map(|h| {
            json!({ "meter": "api-calls", "quantity": 5 * (h + 1), "idempotencyKey": format!("u-{h}"),
                         "occurredAt": (now - chrono::Duration::hours(h)).to_rfc3339() })
        })
        .collect();
    let v = stack
        .ok(
            &hive.url,
            &meter,
            "mutation($r: [UsageRecordInput!]!) { recordUsage(records: $r) { accepted } }",
            json!({ "r": records }),
        )
        .await;
    assert_eq!(v["recordUsage"]["accepted"], 3);

    // The page, as `cpctl dashboard` links to it.
    let base = hive.url.trim_end_matches("/graphql");
    let artifacts = e2e::repo().join(".ci/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("node")
            .arg(e2e::repo().join("clients/dashboard/test/dashboard.mjs"))
            .current_dir(e2e::repo().join("clients/dashboard"))
            .env("DASHBOARD_URL", format!("{base}/dashboard/#token={token}"))
            .env("GRAPHQL_URL", &hive.url)
            .env("TOKEN", &token)
            .env("APPROVAL_ID", &approval)
            .env("WORKFLOW_KEY", "blink")
            .env("SCREENSHOT", &screenshot)
            .env("CHROMIUM", &chromium)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser test ends within two minutes")
    .expect("node runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("TenantUpdated on the page") && stdout.contains("approved from the page"), "{stdout}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot of the page");

    // The approval the page decided is decided, as its voter.
    let v = stack
        .ok(
            &hive.url,
            &token,
            "query($id: ID!) { approval(id: $id) { status votes { principal } } }",
            json!({ "id": approval }),
        )
        .await;
    assert_eq!(v["approval"], json!({ "status": "APPROVED", "votes": [{ "principal": dana }] }));
    hive.stop().await;
    stack.stop().await;
}
