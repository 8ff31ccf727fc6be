//! `cpctl` against the live supergraph through Hive Router and the edge, as a user runs it: logged in
//! with client credentials (the secret on stdin, stored 0600), one command of each domain as a table and
//! as `--json`, long work with its progress, errors with their code, completions; then every task the SDK
//! covers as its command, the operator's and the tenant's, with inputs from files and live watches.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use cp_sdk::ops::tenancy::{CreateEditionInput, IsolationModel, Period, ProvisionTenantInput, QuotaLimitInput};
use cp_sdk::ops::workflow::{PublishWorkflowDefinitionInput, WorkflowStepInput};
use cp_sdk::{Client, Credentials};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use e2e::Stack;

/// `cpctl args…` with its login in `config` (or, for an operator, the endpoint and token in
/// `CP_ENDPOINT` and `CP_TOKEN`), ready to spawn.
fn command(config: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cpctl"));
    command
        .args(args)
        .env("CPCTL_CONFIG", config)
        .env_remove("CP_ENDPOINT")
        .env_remove("CP_TOKEN")
        .env_remove("CP_CLIENT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `cpctl args…` with its login in `config`, `stdin` on its standard input.
async fn cpctl(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    run(command(config, args), stdin).await
}

async fn run(mut command: tokio::process::Command, stdin: Option<&str>) -> Output {
    let mut child = command.spawn().expect("cpctl runs");
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
    let v = json(&config, &["artifact", "download", "notes", "1.0.0", back.to_str().unwrap()]).await;
    assert_eq!(v["size"].as_u64(), Some(body.len() as u64));
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

/// `cpctl args…` as the platform's operator (`CP_ENDPOINT` and `CP_TOKEN`, nothing stored).
async fn as_operator(stack: &Stack, base: &str, config: &Path, args: &[&str]) -> Output {
    let mut cmd = command(config, args);
    cmd.env("CP_ENDPOINT", base).env("CP_TOKEN", stack.operator_token());
    run(cmd, None).await
}

/// `cpctl --json args…` as the platform's operator, which must succeed; its JSON.
async fn operator(stack: &Stack, base: &str, config: &Path, args: &[&str]) -> Value {
    let all: Vec<&str> = ["--json"].iter().chain(args).copied().collect();
    let out = as_operator(stack, base, config, &all).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cpctl {args:?} failed:\n{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("cpctl {args:?} printed no JSON ({e}):\n{stdout}"))
}

/// `cpctl --json args…` whose verdict is no: exit 1, the answer still printed; the answer, and stderr.
async fn refused(config: &Path, args: &[&str]) -> (Value, String) {
    let all: Vec<&str> = ["--json"].iter().chain(args).copied().collect();
    let out = cpctl(config, &all, None).await;
    assert_eq!(out.status.code(), Some(1), "cpctl {args:?} should say no: {out:?}");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("cpctl {args:?} printed no JSON ({e})"));
    (v, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `cpctl args…`, which must fail; its standard error.
async fn fails(config: &Path, args: &[&str]) -> String {
    let out = cpctl(config, args, None).await;
    assert_eq!(out.status.code(), Some(1), "cpctl {args:?} should fail: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `--json` watch command's lines as they are printed, parsed (the command is killed when dropped); if it
/// ends, a last item says how, with what it wrote on stderr.
fn watching(config: &Path, args: &[&str]) -> e2e::Live<Value> {
    use tokio::io::AsyncBufReadExt;
    let all: Vec<&str> = ["--json"].iter().chain(args).copied().collect();
    let mut child = command(config, &all).spawn().expect("cpctl runs");
    let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    e2e::Live::spawn(futures::stream::unfold((Some(child), lines), |(child, mut lines)| async move {
        let child = child?;
        match lines.next_line().await.unwrap() {
            Some(line) => {
                let v = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                Some((v, (Some(child), lines)))
            }
            None => {
                let out = child.wait_with_output().await.unwrap();
                let ended = serde_json::json!({
                    "ended": out.status.to_string(),
                    "stderr": String::from_utf8_lossy(&out.stderr),
                });
                Some((ended, (None, lines)))
            }
        }
    }))
}

/// Every task the SDK covers, as its `cpctl` command: the operator's (editions, the tenant lifecycle,
/// flags, quotas) with `CP_TOKEN`, the tenant's from a stored login; JSON to check each result, a table
/// where the table shows something of its own; inputs too rich for flags from files (`--file`, `--cedar`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpctl_covers_each_task_of_every_domain() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    stack.audit(&["tenancy.#", "identity.#", "catalogue.#"]).await;
    let base = hive.url.trim_end_matches("/graphql").to_owned();
    let dir = tempdir(&stack);
    let config = dir.join("cpctl").join("login.json");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (edition, second, old, tenant) = (
        format!("ed-all-{}", stack.id),
        format!("ed2-all-{}", stack.id),
        format!("old-all-{}", stack.id),
        format!("all-{}", stack.id),
    );
    macro_rules! op {
        ($($arg:expr),+ $(,)?) => {
            operator(&stack, &base, &config, &[$($arg),+]).await
        };
    }

    // Tenancy, as the operator: editions drafted, published, retired; a tenant through its lifecycle.
    let v = op!("edition", "create", &edition, "--name", "All", "--feature", "sso", "--quota", "api-calls=100/day");
    assert_eq!((v["version"].as_i64(), v["status"].as_str()), (Some(1), Some("DRAFT")));
    assert_eq!(v["quotaTemplate"][0], serde_json::json!({ "key": "api-calls", "limit": 100, "period": "DAY" }));
    assert_eq!(op!("edition", "publish", &edition, "1")["status"], "PUBLISHED");
    assert_eq!(op!("edition", "show", &edition)["featureSet"], serde_json::json!(["sso"]));
    for e in [&second, &old] {
        op!("edition", "create", e, "--name", e);
        op!("edition", "publish", e, "1");
    }
    assert_eq!(op!("edition", "retire", &old, "1")["status"], "RETIRED");
    let out = cpctl(&config, &["edition", "create", "x", "--name", "X", "--quota", "api-calls=ten/day"], None).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not KEY=LIMIT/PERIOD"), "{out:?}");
    let provision = ["tenant", "provision", &tenant, "--name", "All Co", "--region", "eu-west", "--edition", &edition];
    assert_eq!(operator(&stack, &base, &config, &provision).await["status"], "PROVISIONING");
    assert_eq!(op!("tenant", "activate", &tenant)["status"], "ACTIVE");
    assert_eq!(op!("tenant", "show", &tenant)["editionId"], edition.as_str());
    assert_eq!(op!("tenant", "legal-hold", &tenant)["legalHold"], true);
    assert_eq!(op!("tenant", "change-edition", &tenant, &second)["editionId"], second.as_str());
    op!("tenant", "change-edition", &tenant, &edition);
    let flag = format!("flag-{}", stack.id);
    let v = op!("flag", "set", &flag, "--enabled", "true", "--rollout", "0", "--allow", &tenant);
    assert_eq!((v["enabled"].as_bool(), v["rolloutPercent"].as_i64()), (Some(true), Some(0)));
    // Setting one option keeps the others.
    let v = op!("flag", "set", &flag, "--description", "for the CLI test");
    assert_eq!((v["enabled"].as_bool(), &v["allowTenants"]), (Some(true), &serde_json::json!([tenant])));
    assert_eq!(v["description"], "for the CLI test");
    let v = op!("quota", "set", &tenant, "api-calls", "5", "--period", "day");
    assert_eq!((v["key"].as_str(), v["limit"].as_i64()), (Some("api-calls"), Some(5)));

    // The tenant's first principal, its role and OAuth client, made by the operator for the tenant; then
    // the tenant's admin logs in with it.
    let admin =
        op!("principal", "create", "admin", "--service", "--tenant", &tenant)["id"].as_str().unwrap().to_owned();
    let mut define = vec!["role", "define", "admin", "--tenant", &tenant];
    define.extend(e2e::PARTNER_PERMISSIONS.iter().flat_map(|p| ["--permission", p]));
    operator(&stack, &base, &config, &define).await;
    assert_eq!(op!("role", "bind", &admin, "admin", "--tenant", &tenant)["roles"][0]["key"], "admin");
    let mut create = vec!["oauth-client", "create", &admin, "--tenant", &tenant];
    create.extend(e2e::PARTNER_PERMISSIONS.iter().flat_map(|p| ["--scope", p]));
    let made = operator(&stack, &base, &config, &create).await;
    let (client_id, client_secret) =
        (made["client"]["clientId"].as_str().unwrap(), made["clientSecret"].as_str().unwrap());
    let login = ["--endpoint", base.as_str(), "login", "--client-id", client_id, "--client-secret-stdin"];
    assert!(cpctl(&config, &login, Some(client_secret)).await.status.success());
    assert_eq!(json(&config, &["whoami"]).await["id"], admin.as_str());
    // A tenant's own credentials do not reach another tenant's identity: for them it does not exist.
    let other = fails(&config, &["principal", "list", "--tenant", "someone-else"]).await;
    assert!(other.starts_with("error: NOT_FOUND: no such tenant"), "{other}");
    let v = json(&config, &["flag", "show", &flag]).await;
    assert_eq!((v["enabled"].as_bool(), v["reason"].as_str()), (Some(true), Some("ALLOWED")));
    assert_eq!(json(&config, &["tenant", "rename", "All Co Ltd"]).await["displayName"], "All Co Ltd");
    assert!(as_operator(&stack, &base, &config, &["flag", "delete", &flag]).await.status.success());

    // Identity: a role bound and unbound, a service principal's OAuth client and API token, each made,
    // rotated or revoked.
    let v = json(
        &config,
        &["role", "define", "reviewer", "--permission", "approvals:decide", "--permission", "governance:read"],
    )
    .await;
    assert_eq!(v["permissions"], serde_json::json!(["approvals:decide", "governance:read"]));
    let bot = json(&config, &["principal", "create", "bot", "--service"]).await["id"].as_str().unwrap().to_owned();
    assert_eq!(json(&config, &["role", "bind", &bot, "reviewer"]).await["roles"][0]["key"], "reviewer");
    assert_eq!(json(&config, &["role", "unbind", &bot, "reviewer"]).await["roles"], serde_json::json!([]));
    assert!(fails(&config, &["role", "unbind", &bot, "reviewer"]).await.starts_with("error: NOT_FOUND"));
    ok(&config, &["role", "bind", &bot, "reviewer"]).await;
    assert_eq!(json(&config, &["principal", "show", &bot]).await["kind"], "SERVICE");
    let made = cpctl(&config, &["--json", "oauth-client", "create", &bot, "--scope", "governance:read"], None).await;
    assert!(String::from_utf8_lossy(&made.stderr).contains("shown this once"));
    let made: Value = serde_json::from_slice(&made.stdout).unwrap();
    let bot_client = made["client"]["clientId"].as_str().unwrap().to_owned();
    let rotated = json(&config, &["oauth-client", "rotate", &bot_client]).await;
    assert!(rotated["clientSecret"].as_str().unwrap().starts_with("cps_"));
    assert_ne!(rotated["clientSecret"], made["clientSecret"]);
    assert!(json(&config, &["oauth-client", "revoke", &bot_client]).await["revokedAt"].is_string());
    let table = ok(&config, &["api-token", "create", &bot, "--name", "nightly", "--scope", "governance:read"]).await;
    assert!(table.lines().any(|l| l.starts_with("secret: cpt_")) && table.contains("nightly"), "{table}");
    let token = json(&config, &["api-token", "list"]).await[0]["id"].as_str().unwrap().to_owned();
    ok(&config, &["api-token", "revoke", &token]).await;
    assert!(json(&config, &["api-token", "list"]).await[0]["revokedAt"].is_string());
    assert_eq!(json(&config, &["principal", "disable", &bot]).await["status"], "DISABLED");

    // Catalogue: a project changed, its environment's history, modules and a dependency with the
    // impact of a new version and the build order, a blueprint drafted from a file and validated.
    json(&config, &["project", "create", "shop", "--name", "Shop"]).await;
    assert_eq!(json(&config, &["project", "update", "shop", "--name", "The Shop"]).await["name"], "The Shop");
    ok(&config, &["env", "set", "shop", "staging", "--config", r#"{"replicas":3}"#, "--reason", "scale"]).await;
    let history = json(&config, &["env", "history", "shop", "staging"]).await;
    assert_eq!((history[0]["reason"].as_str(), history.as_array().unwrap().len()), (Some("scale"), 1));
    let register = |name: &'static str, version: &'static str| {
        let config = &config;
        async move {
            let args =
                ["module", "register", "shop", name, "--kind", "service", "--version", version, "--tags", "core"];
            json(config, &args).await["id"].as_str().unwrap().to_owned()
        }
    };
    let (api, web) = (register("api", "1.4.0").await, register("web", "2.0.0").await);
    let dependency = json(&config, &["dependency", "add", &web, &api, "--constraint", "^1.2"]).await;
    assert_eq!(dependency["satisfied"], true);
    assert_eq!(json(&config, &["module", "deps", &web]).await[0]["moduleId"], api.as_str());
    assert_eq!(
        json(&config, &["module", "deps", &api, "--direction", "dependents"]).await[0]["moduleId"],
        web.as_str()
    );
    let impact = json(&config, &["module", "impact", &api, "--new-version", "2.0.0"]).await;
    assert_eq!(impact["breaking"].as_array().unwrap().len(), 1, "web's ^1.2 does not take 2.0.0: {impact}");
    let order = ok(&config, &["project", "build-order", "shop"]).await;
    assert!(order.find("api@1.4.0").unwrap() < order.find("web@2.0.0").unwrap(), "{order}");
    assert_eq!(
        json(&config, &["module", "update", &api, "--version", "1.5.0", "--tags", ""]).await["tags"],
        serde_json::json!([])
    );
    assert!(ok(&config, &["module", "show", &api]).await.contains("1.5.0"));
    ok(&config, &["dependency", "remove", &web, &api]).await;
    assert!(fails(&config, &["dependency", "remove", &web, &api]).await.starts_with("error: NOT_FOUND"));
    ok(&config, &["module", "remove", &web]).await;
    assert!(fails(&config, &["module", "show", &web]).await.starts_with("error: NOT_FOUND"));
    let blueprint =
        json(&config, &["blueprint", "create", "shop", "checkout"]).await["id"].as_str().unwrap().to_owned();
    let definition =
        file("blueprint.json", r#"{ "contexts": [{ "name": "orders", "modules": ["api"], "aggregates": [] }] }"#);
    let draft = json(&config, &["blueprint", "draft", &blueprint, "--file", &definition]).await;
    let version = draft["version"].as_i64().unwrap().to_string();
    let validation = json(&config, &["blueprint", "validate", &blueprint, &version]).await;
    let (got, valid) = (validation["version"].as_i64(), validation["valid"].as_bool());
    assert_eq!((got, valid), (draft["version"].as_i64(), Some(true)), "{validation}");
    // A draft naming a module the project lacks is not valid: exit 1, the findings printed.
    let broken =
        file("broken.json", r#"{ "contexts": [{ "name": "orders", "modules": ["nope"], "aggregates": [] }] }"#);
    let draft = json(&config, &["blueprint", "draft", &blueprint, "--file", &broken]).await;
    let version = draft["version"].as_i64().unwrap().to_string();
    let (validation, stderr) = refused(&config, &["blueprint", "validate", &blueprint, &version]).await;
    let errors: Vec<&Value> =
        validation["results"].as_array().unwrap().iter().filter(|r| r["severity"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{validation}");
    assert_eq!(errors[0]["rule"], "module-reference", "{validation}");
    assert!(stderr.contains("is not valid"), "{stderr}");
    assert_eq!(json(&config, &["blueprint", "show", &blueprint]).await["name"], "checkout");
    let bad = file("bad.json", "{ not json");
    assert!(fails(&config, &["blueprint", "draft", &blueprint, "--file", &bad])
        .await
        .contains("bad.json is not the input"));

    // Governance: a Cedar policy from a file decides a request from a file; an approval requested and
    // cancelled; an integration's secret by reference; a model policy; usage recorded once; the audit log.
    let cedar = file("no-writes.cedar", r#"forbid(principal, action == Action::"write", resource);"#);
    let policy = json(&config, &["policy", "draft", "no-writes", "--effect", "deny", "--cedar", &cedar]).await;
    let policy = policy["id"].as_str().unwrap().to_owned();
    assert_eq!(
        json(&config, &["policy", "update", &policy, "--description", "no writes"]).await["description"],
        "no writes"
    );
    assert_eq!(json(&config, &["policy", "publish", &policy]).await["status"], "PUBLISHED");
    let request = file(
        "request.json",
        r#"{ "principal": { "type": "Principal", "id": "alice" }, "action": "write",
             "resource": { "type": "Project", "id": "shop" } }"#,
    );
    let (decision, stderr) = refused(&config, &["policy", "evaluate", "--file", &request]).await;
    assert!(stderr.contains("the decision is DENY"), "{stderr}");
    assert_eq!(
        (decision["effect"].as_str(), decision["determiningPolicies"][0]["id"].as_str()),
        (Some("DENY"), Some(policy.as_str()))
    );
    let shown = json(&config, &["decision", "show", decision["id"].as_str().unwrap()]).await;
    assert_eq!(shown["action"], decision["action"]);
    assert!(ok(&config, &["policy", "show", &policy]).await.contains("forbid(principal"));
    assert_eq!(json(&config, &["policy", "deprecate", &policy]).await["status"], "DEPRECATED");
    let typo = file(
        "typo.json",
        r#"{ "principal": { "type": "P", "id": "a" }, "acton": "write", "resource": { "type": "R", "id": "r" } }"#,
    );
    assert!(fails(&config, &["policy", "evaluate", "--file", &typo]).await.contains("unknown field `acton`"));

    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let gate = file(
        "gate.json",
        &serde_json::json!({ "subjectKind": "release.Gate", "subjectId": "r-1", "summary": "release 1",
            "approverRoles": ["reviewer"], "quorum": 1, "expiresAt": expires })
        .to_string(),
    );
    let approval = json(&config, &["approval", "request", "--file", &gate]).await["id"].as_str().unwrap().to_owned();
    assert_eq!(json(&config, &["approval", "show", &approval]).await["status"], "PENDING");
    assert_eq!(json(&config, &["approval", "cancel", &approval]).await["status"], "CANCELLED");

    // A tenant's `env:` references name variables under its own prefix; this process runs governance.
    let prefix = format!("CP_SECRET_{}__", tenant.to_uppercase().replace('-', "_"));
    std::env::set_var(format!("{prefix}GIT_TOKEN"), "ghp_example");
    let secret = format!("token=env:{prefix}GIT_TOKEN");
    let create =
        ["integration", "create", "github", "--kind", "git-hosting", "--provider", "github", "--secret", &secret];
    let git = json(&config, &create).await["id"].as_str().unwrap().to_owned();
    assert_eq!(json(&config, &["integration", "test", &git]).await["ok"], true);
    let missing = format!("token=env:{prefix}MISSING");
    json(&config, &["integration", "rotate", &git, "--secret", &missing]).await;
    assert_eq!(refused(&config, &["integration", "test", &git]).await.0["ok"], false);
    assert_eq!(json(&config, &["integration", "update", &git, "--disable"]).await["status"], "DISABLED");

    let agents = file(
        "agents.json",
        r#"{ "name": "agents", "allowed": [{ "provider": "openai", "models": ["gpt-5"] }], "maxTokensPerTask": 20000 }"#,
    );
    let mp = json(&config, &["model-policy", "draft", "--file", &agents]).await["id"].as_str().unwrap().to_owned();
    json(&config, &["model-policy", "publish", &mp]).await;
    let evaluate = ["model-policy", "evaluate", "--provider", "openai", "--model", "gpt-5", "--tokens", "1000"];
    assert_eq!(json(&config, &evaluate).await["allowed"], true);
    let other = cpctl(&config, &["model-policy", "evaluate", "--provider", "openai", "--model", "other"], None).await;
    let said = String::from_utf8_lossy(&other.stdout);
    assert!(other.status.code() == Some(1) && said.starts_with("not allowed: "), "{other:?}");
    assert!(ok(&config, &["model-policy", "list"]).await.contains("openai: gpt-5"));
    assert_eq!(json(&config, &["model-policy", "deprecate", &mp]).await["status"], "DEPRECATED");

    let at = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let dimensions = r#"{"runner":"linux"}"#;
    let record =
        ["usage", "record", "build-minutes", "12", "--key", "build-1", "--at", &at, "--dimensions", dimensions];
    assert_eq!(json(&config, &record).await["accepted"], 1);
    assert_eq!(json(&config, &record).await["duplicates"], 1, "the same key counts once");
    let report = json(&config, &["usage", "report", "build-minutes", "--group-by", "runner"]).await;
    assert_eq!((report["quantity"].as_i64(), report["groups"][0]["value"].as_str()), (Some(12), Some("linux")));

    test_support::eventually("audit entries", std::time::Duration::from_secs(20), || async {
        json(&config, &["audit", "entries"]).await.as_array().unwrap().len() >= 5
    })
    .await;
    let checkpoint = json(&config, &["audit", "checkpoint", "--key", &stack.audit_verifier_key]).await;
    assert_eq!(checkpoint["origin"], format!("e2e.example/audit/{tenant}"));
    let wrong = fails(&config, &["audit", "checkpoint", "--key", &e2e::foreign_audit_verifier_key()]).await;
    assert!(wrong.contains("signature"), "a checkpoint another key signed is refused: {wrong}");
    let proven = ok(&config, &["audit", "prove", "3", "--key", &stack.audit_verifier_key]).await;
    assert!(proven.starts_with("entry 3 (") && proven.trim_end().ends_with(": verified"), "{proven}");
    assert!(fails(&config, &["audit", "prove", "100000", "--key", &stack.audit_verifier_key])
        .await
        .starts_with("error: NOT_FOUND"));
    let verified = ok(&config, &["audit", "verify"]).await;
    assert!(verified.contains("the chain is intact"), "{verified}");

    // Workflow: a definition published from a file and read back; an instance's history; events live.
    let quick = file(
        "quick.json",
        r#"{ "key": "quick", "name": "Quick", "description": "", "start": "pause",
             "steps": [{ "id": "pause", "type": "WAIT", "waitSeconds": 1 }] }"#,
    );
    assert_eq!(json(&config, &["definition", "publish", "--file", &quick]).await["version"], 1);
    let shown = ok(&config, &["definition", "show", "quick"]).await;
    assert!(shown.contains("wait 1 s") && shown.contains("Quick"), "{shown}");
    // Waited on with --json: one line per state, the last one final.
    let states = ok(&config, &["--json", "workflow", "start", "quick", "--wait"]).await;
    let instance: Value = serde_json::from_str(states.lines().last().unwrap()).unwrap();
    assert_eq!(instance["status"], "COMPLETED", "{states}");
    let id = instance["id"].as_str().unwrap().to_owned();
    let history = json(&config, &["workflow", "history", &id]).await;
    assert_eq!(history.as_array().unwrap().len() as i64, instance["version"].as_i64().unwrap(), "{history}");
    assert_eq!(history[0]["version"], 1);
    let event = watching(&config, &["workflow", "events"])
        .act_until(
            "workflow event of a new instance",
            |_| async { json(&config, &["workflow", "start", "quick"]).await["id"].clone() },
            |started, e| &e["instanceId"] == started,
        )
        .await;
    assert!(event["eventType"].is_string(), "{event}");

    // Lineage: an artifact registered, versions recorded (one derived from the other, its hash from a
    // file), their changes live, the lineage graph.
    let v = json(&config, &["artifact", "register", "notes", "--type", "document", "--name", "Notes"]).await;
    assert_eq!(v["classification"], "INTERNAL");
    let body = file("notes.txt", "hello, lineage");
    let v = json(&config, &["artifact", "record", "notes", "1.0.0", "--hash-of", &body]).await;
    assert_eq!(v["contentHash"], cp_sdk::ops::lineage::content_hash(b"hello, lineage"));
    let change = watching(&config, &["artifact", "watch", "--artifact", "notes"])
        .act_until(
            "artifact change",
            |minor| {
                let config = &config;
                async move {
                    let version = format!("1.{}.0", minor + 1);
                    let hash = cp_sdk::ops::lineage::content_hash(version.as_bytes());
                    let args =
                        ["artifact", "record", "notes", &version, "--hash", &hash, "--derived-from", "notes@1.0.0"];
                    json(config, &args).await;
                    version
                }
            },
            |version, c| c["eventType"] == "ArtifactVersionRecorded" && &c["version"]["version"] == version,
        )
        .await;
    let version = change["version"]["version"].as_str().unwrap().to_owned();
    let graph = json(&config, &["lineage", &format!("artifact:notes@{version}")]).await;
    assert_eq!(graph["nodes"][0]["id"], "artifact:notes@1.0.0", "{graph}");

    // Last: what ends things. A tenant on legal hold is not retired; once the hold is lifted, it is.
    let out = as_operator(&stack, &base, &config, &["tenant", "retire", &tenant]).await;
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: CONFLICT: "), "{out:?}");
    assert_eq!(op!("tenant", "legal-hold", &tenant, "--lift")["legalHold"], false);
    assert_eq!(json(&config, &["project", "archive", "shop"]).await["status"], "ARCHIVED");
    assert_eq!(op!("tenant", "retire", &tenant, "--reason", "done")["status"], "RETIRED");

    hive.stop().await;
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
