//! `cpctl` against the live supergraph through Hive Router and the edge, as a user runs it: logged in
//! with client credentials (the secret on stdin, stored 0600), one command of each domain as a table and
//! as `--json`, long work with its progress, errors with their code, completions.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use cp_sdk::ops::tenancy::{CreateEditionInput, IsolationModel, Period, ProvisionTenantInput, QuotaLimitInput};
use cp_sdk::ops::workflow::{PublishWorkflowDefinitionInput, WorkflowStepInput};
use cp_sdk::{Client, Credentials};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use e2e::Stack;

/// Runs `cpctl args…` with its login in `config`, `stdin` on its standard input.
async fn cpctl(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cpctl"))
        .args(args)
        .env("CPCTL_CONFIG", config)
        .env_remove("CP_ENDPOINT")
        .env_remove("CP_TOKEN")
        .env_remove("CP_CLIENT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cpctl runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    child.wait_with_output().await.unwrap()
}

/// `cpctl args…`, which must succeed; its standard output.
async fn ok(config: &Path, args: &[&str]) -> String {
    let out = cpctl(config, args, None).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cpctl {args:?} failed:\n{stderr}\n{stdout}");
    stdout.into_owned()
}

/// `cpctl --json args…`, parsed.
async fn json(config: &Path, args: &[&str]) -> Value {
    let all: Vec<&str> = ["--json"].iter().chain(args).copied().collect();
    let out = ok(config, &all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("cpctl {args:?} printed no JSON ({e}):\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpctl_runs_each_domains_commands_as_tables_and_json() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let base = hive.url.trim_end_matches("/graphql").to_owned();
    let dir = tempdir(&stack);
    let config = dir.join("cpctl").join("login.json");

    // A tenant to work in, set up with the SDK as its operator would.
    let operator = Client::new(&base, Credentials::Token(stack.operator_token())).unwrap();
    let (edition, tenant) = (format!("ed-cli-{}", stack.id), format!("cli-{}", stack.id));
    let quota = vec![QuotaLimitInput { key: "api-calls".into(), limit: 10, period: Period::Day }];
    let input =
        CreateEditionInput { id: edition.clone(), name: "CLI".into(), feature_set: vec![], quota_template: quota };
    let draft = operator.create_edition(input).await.unwrap();
    operator.publish_edition(&edition, draft.version).await.unwrap();
    let tenant_input = ProvisionTenantInput {
        id: cynic::Id::new(&tenant),
        display_name: "CLI Co".into(),
        region: "eu-west".into(),
        edition_id: edition,
        isolation_model: IsolationModel::Shared,
    };
    operator.provision_tenant(tenant_input).await.unwrap();
    operator.activate_tenant(cynic::Id::new(&tenant), None).await.unwrap();
    let permissions = [
        "tenancy:read",
        "identity:read",
        "catalogue:read",
        "catalogue:write",
        "governance:read",
        "workflow:read",
        "workflow:write",
        "lineage:read",
        "lineage:write",
    ];
    let (client_id, client_secret, _) = stack.oauth_client(&hive.url, &tenant, &permissions).await;

    // Not logged in yet: a clear error, and a refused secret is not stored.
    let out = cpctl(&config, &["tenant", "show"], None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not logged in"), "{out:?}");
    let login = ["--endpoint", base.as_str(), "login", "--client-id", client_id.as_str(), "--client-secret-stdin"];
    let out = cpctl(&config, &login, Some("cps_wrong")).await;
    assert!(!out.status.success() && !config.exists(), "refused credentials are not stored");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_client"), "{out:?}");

    // Logged in: the secret stays out of argv and is stored for its owner only.
    let out = cpctl(&config, &login, Some(&client_secret)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(config.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);

    // Tenancy.
    let table = ok(&config, &["tenant", "show"]).await;
    assert!(table.contains("CLI Co") && table.contains("ACTIVE") && table.contains("STATUS"), "{table}");
    let v = json(&config, &["tenant", "show"]).await;
    assert_eq!((v["id"].as_str(), v["status"].as_str()), (Some(tenant.as_str()), Some("ACTIVE")));
    assert_eq!(json(&config, &["quota", "list"]).await[0]["limit"], 10);

    // Identity.
    let table = ok(&config, &["principal", "list"]).await;
    assert!(table.contains("SERVICE") || table.contains("USER"), "{table}");
    assert_eq!(json(&config, &["principal", "list"]).await.as_array().unwrap().len(), 1);

    // Catalogue: create, list, an error with its code.
    let v = json(&config, &["project", "create", "shop", "--name", "Shop"]).await;
    assert_eq!(v["slug"], "shop");
    let table = ok(&config, &["project", "list"]).await;
    assert!(table.contains("shop") && table.contains("prod@1"), "{table}");
    let out = cpctl(&config, &["project", "create", "shop", "--name", "Again"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: CONFLICT: "), "{stderr}");
    let out = cpctl(&config, &["env", "set", "shop", "staging", "--config", "{not json"], None).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config is not JSON"), "{out:?}");
    let v = json(&config, &["env", "set", "shop", "staging", "--config", r#"{"replicas":2}"#]).await;
    assert_eq!((v["change"]["status"].as_str(), v["environment"]["version"].as_i64()), (Some("APPLIED"), Some(2)));

    // Governance.
    assert_eq!(json(&config, &["approval", "list"]).await, serde_json::json!([]));
    let table = ok(&config, &["approval", "list"]).await;
    assert!(table.contains("SUMMARY"), "{table}");

    // Workflow: started and waited on (progress on a terminal; the end state printed).
    let definition = PublishWorkflowDefinitionInput {
        key: "quick".into(),
        name: "Quick".into(),
        description: String::new(),
        start: "pause".into(),
        steps: vec![WorkflowStepInput::wait("pause", 1)],
        continue_as_new_after: None,
    };
    let sdk = Client::new(&base, Credentials::ClientCredentials { client_id, client_secret, scope: None }).unwrap();
    sdk.publish_workflow_definition(definition).await.unwrap();
    let table = ok(&config, &["workflow", "start", "quick", "--wait"]).await;
    assert!(table.contains("COMPLETED") && table.contains("quick@1"), "{table}");
    // The list reads the process-state projection, which follows the event store within moments.
    test_support::eventually("the list to show it completed", std::time::Duration::from_secs(10), || async {
        json(&config, &["workflow", "list"]).await[0]["status"] == "COMPLETED"
    })
    .await;

    // Lineage: a body up and down through the public endpoint.
    let body = b"hello, lineage".repeat(1000);
    let file = dir.join("body.bin");
    std::fs::write(&file, &body).unwrap();
    let register = cp_sdk::ops::lineage::RegisterArtifactInput {
        id: "notes".into(),
        artifact_type: "document".into(),
        name: "Notes".into(),
        classification: cp_sdk::ops::lineage::ArtifactClassification::Internal,
        project_id: None,
    };
    sdk.register_artifact(register).await.unwrap();
    sdk.record_artifact_version(cp_sdk::ops::lineage::RecordArtifactVersionInput {
        artifact_id: cynic::Id::new("notes"),
        version: "1.0.0".into(),
        content_hash: cp_sdk::ops::lineage::content_hash(&body),
        status: cp_sdk::ops::lineage::RecordedAs::Generated,
        attributes: None,
        derived_from: vec![],
        produced_by_task_id: None,
    })
    .await
    .unwrap();
    let v = json(&config, &["artifact", "upload", "notes", "1.0.0", file.to_str().unwrap()]).await;
    assert_eq!((v["size"].as_u64(), v["storedNow"].as_bool()), (Some(body.len() as u64), Some(true)));
    let back = dir.join("back.bin");
    ok(&config, &["artifact", "download", "notes", "1.0.0", back.to_str().unwrap()]).await;
    assert_eq!(std::fs::read(&back).unwrap(), body);
    let table = ok(&config, &["artifact", "show", "notes", "1.0.0"]).await;
    assert!(table.contains("STORED"), "{table}");

    // The dashboard's link: the page, with a token that works.
    let link = ok(&config, &["dashboard"]).await;
    let (page, token) = link.trim().split_once("#token=").expect("a link with its token in the fragment");
    assert_eq!(page, format!("{base}/dashboard/"));
    let html = reqwest::get(page).await.unwrap();
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    let viewer = Client::new(&base, Credentials::Token(token.to_owned())).unwrap();
    assert_eq!(viewer.current_tenant().await.unwrap().id.inner(), tenant);

    // Completions, and logging out.
    let bash = ok(&config, &["completions", "bash"]).await;
    assert!(bash.contains("_cpctl") && bash.contains("approval"), "a bash completion script");
    ok(&config, &["logout"]).await;
    assert!(!config.exists());

    hive.stop().await;
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(stack: &Stack) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cpctl-{}", stack.id));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
