//! The agent and skill registries: drafts, publication and immutability (API and SQL), JSON Schema checks,
//! agent publication against tenant and platform skills, platform definitions, tenant isolation, and the
//! reference check blueprints use.

use std::time::Duration;

use kernel::TenantId;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use test_support::{code, Tap};

type App = test_support::TestApp<catalogue::State>;

async fn app() -> App {
    App::start(&catalogue::Config::default()).await
}

/// A tenant slug unique to this app.
fn tenant(app: &App, name: &str) -> String {
    format!("{name}-{}", app.id)
}

fn member(app: &App, tenant: &str) -> String {
    app.tenant_token(tenant, &["catalogue:read", "catalogue:write"])
}

const CREATE_SKILL: &str = "mutation($input: CreateSkillDefinitionInput!) {
    createSkillDefinition(input: $input) { key version name description inputSchema outputSchema status platform publishedAt deprecatedAt } }";
const UPDATE_SKILL: &str =
    "mutation($input: UpdateSkillDraftInput!) { updateSkillDraft(input: $input) { name status } }";
const PUBLISH_SKILL: &str = "mutation($key: String!, $version: String!, $platform: Boolean! = false) {
    publishSkillDefinition(key: $key, version: $version, platform: $platform) { status publishedAt platform } }";
const DEPRECATE_SKILL: &str = "mutation($key: String!, $version: String!, $platform: Boolean! = false) {
    deprecateSkillDefinition(key: $key, version: $version, platform: $platform) { status deprecatedAt } }";
const CREATE_AGENT: &str = "mutation($input: CreateAgentDefinitionInput!) {
    createAgentDefinition(input: $input) { key version status skills { skillKey versionReq resolvedVersion } } }";
const PUBLISH_AGENT: &str = "mutation($key: String!, $version: String!, $platform: Boolean! = false) {
    publishAgentDefinition(key: $key, version: $version, platform: $platform) {
      status skills { skillKey versionReq resolvedVersion definition { key version platform status } } } }";

fn schema() -> Value {
    json!({ "type": "object", "properties": { "text": { "type": "string" } }, "required": ["text"] })
}

fn skill_input(key: &str, version: &str, platform: bool) -> Value {
    json!({ "input": { "key": key, "version": version, "name": "Summarize", "inputSchema": schema(),
                       "outputSchema": { "type": "string" }, "platform": platform } })
}

/// Creates and publishes a skill version (the platform's with the operator token and `platform`).
async fn published_skill(app: &App, token: &str, key: &str, version: &str, platform: bool) {
    app.ok(token, CREATE_SKILL, skill_input(key, version, platform)).await;
    app.ok(token, PUBLISH_SKILL, json!({ "key": key, "version": version, "platform": platform })).await;
}

/// The next `event_type` for `tenant` whose payload's `field` is `key` (platform events of other tests
/// share the tenant `platform`).
async fn event_about(tap: &mut Tap, event_type: &str, tenant: &str, field: &str, key: &str) -> Value {
    loop {
        let e = tap.event(event_type, tenant, Duration::from_secs(10)).await;
        if e["payload"][field] == key {
            return e;
        }
    }
}

/// Sees the skills `token`'s caller can list, as `owner:key@version` strings.
async fn listed_skills(app: &App, token: &str, include_platform: bool) -> Vec<String> {
    let d = app
        .ok(
            token,
            "query($p: Boolean!) { skillDefinitions(first: 100, includePlatform: $p) { edges { node { key version platform } } } }",
            json!({ "p": include_platform }),
        )
        .await;
    d["skillDefinitions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            let owner = if n["platform"].as_bool().unwrap() { "platform" } else { "own" };
            format!("{owner}:{}@{}", n["key"].as_str().unwrap(), n["version"].as_str().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn a_skill_is_drafted_published_and_then_immutable_in_the_api_and_in_sql() {
    let app = app().await;
    let acme = tenant(&app, "acme");
    let t = member(&app, &acme);
    let mut tap = Tap::new("catalogue.#").await;

    let d = app.ok(&t, CREATE_SKILL, skill_input("summarize", "1.0.0", false)).await;
    let s = &d["createSkillDefinition"];
    assert_eq!(s["status"], "DRAFT");
    assert_eq!(s["platform"], false);
    assert_eq!(s["inputSchema"], schema());
    assert!(s["publishedAt"].is_null());
    event_about(&mut tap, "SkillDefinitionDrafted", &acme, "skillKey", "summarize").await;

    // Drafts are editable; the version is unique per key.
    let d = app
        .ok(&t, UPDATE_SKILL, json!({ "input": { "key": "summarize", "version": "1.0.0", "name": "Summary" } }))
        .await;
    assert_eq!(d["updateSkillDraft"]["name"], "Summary");
    let v = app.gql(&t, CREATE_SKILL, skill_input("summarize", "1.0.0", false)).await;
    assert_eq!(code(&v), "CONFLICT", "{v}");

    let d = app.ok(&t, PUBLISH_SKILL, json!({ "key": "summarize", "version": "1.0.0" })).await;
    assert_eq!(d["publishSkillDefinition"]["status"], "PUBLISHED");
    let e = event_about(&mut tap, "SkillDefinitionPublished", &acme, "skillKey", "summarize").await;
    assert_eq!(
        e["payload"],
        json!({ "skillKey": "summarize", "version": "1.0.0", "name": "Summary", "description": "",
                "inputSchema": schema(), "outputSchema": { "type": "string" }, "platform": false })
    );

    // Published: no edits, no second publication.
    let v =
        app.gql(&t, UPDATE_SKILL, json!({ "input": { "key": "summarize", "version": "1.0.0", "name": "X" } })).await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    let v = app.gql(&t, PUBLISH_SKILL, json!({ "key": "summarize", "version": "1.0.0" })).await;
    assert_eq!(code(&v), "CONFLICT", "{v}");

    // The app role cannot edit it behind the API either: the trigger refuses.
    let mut conn = PgConnection::connect(&app.db.app_url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(&acme).execute(&mut *tx).await.unwrap();
    let err = sqlx::query("UPDATE skill_definitions SET name = 'Sneaky' WHERE skill_key = 'summarize'")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(err.as_database_error().and_then(|e| e.constraint()), Some("skill_definitions_immutable"), "{err}");
    tx.rollback().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(&acme).execute(&mut *tx).await.unwrap();
    let err =
        sqlx::query("UPDATE skill_definitions SET status = 'Draft', published_at = NULL WHERE skill_key = 'summarize'")
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert_eq!(err.as_database_error().and_then(|e| e.constraint()), Some("skill_definitions_immutable"), "{err}");
    tx.rollback().await.unwrap();

    // Deprecation is the one change left, and it is final.
    let v = app.gql(&t, DEPRECATE_SKILL, json!({ "key": "summarize", "version": "2.0.0" })).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let d = app.ok(&t, DEPRECATE_SKILL, json!({ "key": "summarize", "version": "1.0.0" })).await;
    assert_eq!(d["deprecateSkillDefinition"]["status"], "DEPRECATED");
    event_about(&mut tap, "SkillDefinitionDeprecated", &acme, "skillKey", "summarize").await;
    let v = app.gql(&t, DEPRECATE_SKILL, json!({ "key": "summarize", "version": "1.0.0" })).await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(&acme).execute(&mut *tx).await.unwrap();
    let err = sqlx::query(
        "UPDATE skill_definitions SET status = 'Published', deprecated_at = NULL WHERE skill_key = 'summarize'",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(err.as_database_error().and_then(|e| e.constraint()), Some("skill_definitions_immutable"), "{err}");
    tx.rollback().await.unwrap();

    // A draft cannot be deprecated; a deprecated version is no longer "the newest published".
    app.ok(&t, CREATE_SKILL, skill_input("summarize", "1.1.0-rc.1", false)).await;
    let v = app.gql(&t, DEPRECATE_SKILL, json!({ "key": "summarize", "version": "1.1.0-rc.1" })).await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    let v = app.gql(&t, "{ skillDefinition(key: \"summarize\") { version } }", json!({})).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let d = app.ok(&t, "{ skillDefinition(key: \"summarize\", version: \"1.0.0\") { status } }", json!({})).await;
    assert_eq!(d["skillDefinition"]["status"], "DEPRECATED");
    app.cleanup().await;
}

#[tokio::test]
async fn invalid_input_is_refused_with_a_code_and_nothing_is_written() {
    let app = app().await;
    let acme = tenant(&app, "acme");
    let t = member(&app, &acme);

    let mut bad = skill_input("summarize", "1.0.0", false);
    bad["input"]["inputSchema"] = json!({ "type": "strin" });
    let v = app.gql(&t, CREATE_SKILL, bad).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("inputSchema is not a valid JSON Schema"), "{msg}");

    let mut bad = skill_input("summarize", "1.0.0", false);
    bad["input"]["outputSchema"] = json!({ "type": "string", "pattern": "([a-z]" });
    let v = app.gql(&t, CREATE_SKILL, bad).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("outputSchema"), "{v}");

    let mut bad = skill_input("summarize", "1.0.0", false);
    bad["input"]["outputSchema"] = json!({ "$ref": "https://schemas.example/out.json" });
    assert_eq!(code(&app.gql(&t, CREATE_SKILL, bad).await), "BAD_USER_INPUT");

    for (field, value) in [("version", json!("1.0")), ("version", json!("1.0.0+build")), ("key", json!("Bad Key"))] {
        let mut bad = skill_input("summarize", "1.0.0", false);
        bad["input"][field] = value;
        assert_eq!(code(&app.gql(&t, CREATE_SKILL, bad).await), "BAD_USER_INPUT", "{field}");
    }

    // Agents: typed model requirements (unknown fields refused), semver ranges, each skill once.
    let agent = |extra: Value| {
        let mut input = json!({ "key": "writer", "version": "1.0.0", "name": "Writer" });
        input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({ "input": input })
    };
    for extra in [
        json!({ "modelRequirements": { "providers": ["openai"], "temperature": 0.2 } }),
        json!({ "modelRequirements": { "maxCostPerTaskUsd": -1 } }),
        json!({ "skills": [{ "skillKey": "summarize", "versionReq": "one-ish" }] }),
        json!({ "skills": [{ "skillKey": "summarize", "versionReq": "^1" }, { "skillKey": "summarize", "versionReq": "^2" }] }),
        json!({ "capabilities": ["Writing!"] }),
    ] {
        let v = app.gql(&t, CREATE_AGENT, agent(extra.clone())).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{extra}: {v}");
    }

    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM skill_definitions) + (SELECT count(*) FROM agent_definitions)",
    )
    .fetch_one(&app.admin_pool().await)
    .await
    .unwrap();
    assert_eq!(n, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn publishing_an_agent_resolves_its_skills_over_the_tenants_and_the_platforms() {
    let app = app().await;
    let acme = tenant(&app, "acme");
    let t = member(&app, &acme);
    let op = app.operator_token();
    let search = format!("web-search-{}", app.id);
    let mut tap = Tap::new("catalogue.AgentDefinitionPublished").await;

    let input = json!({ "input": {
        "key": "researcher", "version": "1.0.0", "name": "Researcher", "capabilities": ["research", "browse"],
        "skills": [{ "skillKey": search, "versionReq": "^1.1" }, { "skillKey": "summarize", "versionReq": "~2.0" }],
        "modelRequirements": { "providers": ["anthropic"], "minContextTokens": 100000, "maxCostPerTaskUsd": 0.5 } } });
    let d = app.ok(&t, CREATE_AGENT, input).await;
    assert_eq!(d["createAgentDefinition"]["skills"][0]["resolvedVersion"], Value::Null);

    // Neither skill is published yet: refused, naming both; the agent stays a draft.
    let v = app.gql(&t, PUBLISH_AGENT, json!({ "key": "researcher", "version": "1.0.0" })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains(&search) && msg.contains("summarize"), "{msg}");

    // The tenant's own summarize 2.0.x, and a platform web search (1.1.0 and 1.4.2; 2.0.0 is out of range,
    // 1.5.0 only a draft).
    published_skill(&app, &t, "summarize", "2.0.3", false).await;
    app.ok(&t, CREATE_SKILL, skill_input("summarize", "2.0.4", false)).await;
    let v = app.gql(&t, PUBLISH_AGENT, json!({ "key": "researcher", "version": "1.0.0" })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    assert!(!v["errors"][0]["message"].as_str().unwrap().contains("summarize"), "{v}");
    for version in ["1.1.0", "1.4.2", "2.0.0"] {
        published_skill(&app, &op, &search, version, true).await;
    }
    app.ok(&op, CREATE_SKILL, skill_input(&search, "1.5.0", true)).await;

    // A draft agent shows what its ranges resolve to now.
    let d = app
        .ok(
            &t,
            "{ agentDefinition(key: \"researcher\", version: \"1.0.0\") { status skills { definition { version } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["agentDefinition"]["status"], "DRAFT");
    assert_eq!(
        d["agentDefinition"]["skills"],
        json!([{ "definition": { "version": "1.4.2" } }, { "definition": { "version": "2.0.3" } }])
    );

    let d = app.ok(&t, PUBLISH_AGENT, json!({ "key": "researcher", "version": "1.0.0" })).await;
    let a = &d["publishAgentDefinition"];
    assert_eq!(a["status"], "PUBLISHED");
    assert_eq!(
        a["skills"],
        json!([
            { "skillKey": search, "versionReq": "^1.1", "resolvedVersion": "1.4.2",
              "definition": { "key": search, "version": "1.4.2", "platform": true, "status": "PUBLISHED" } },
            { "skillKey": "summarize", "versionReq": "~2.0", "resolvedVersion": "2.0.3",
              "definition": { "key": "summarize", "version": "2.0.3", "platform": false, "status": "PUBLISHED" } },
        ])
    );

    let e = event_about(&mut tap, "AgentDefinitionPublished", &acme, "agentKey", "researcher").await;
    assert_eq!(
        e["payload"],
        json!({
            "agentKey": "researcher", "version": "1.0.0", "name": "Researcher", "description": "",
            "capabilities": ["browse", "research"],
            "skills": [
                { "skillKey": search, "versionReq": "^1.1", "resolvedVersion": "1.4.2", "platform": true },
                { "skillKey": "summarize", "versionReq": "~2.0", "resolvedVersion": "2.0.3", "platform": false },
            ],
            "modelRequirements": { "providers": ["anthropic"], "models": [], "features": [],
                                   "minContextTokens": 100000, "maxCostPerTaskUsd": 0.5 },
            "platform": false,
        })
    );

    // The published agent keeps its versions: newer skills and deprecations change nothing it resolved to.
    published_skill(&app, &t, "summarize", "2.0.9", false).await;
    app.ok(&op, DEPRECATE_SKILL, json!({ "key": search, "version": "1.4.2", "platform": true })).await;
    let d = app
        .ok(&t, "{ agentDefinition(key: \"researcher\") { version skills { resolvedVersion definition { version status } } } }", json!({}))
        .await;
    assert_eq!(
        d["agentDefinition"]["skills"],
        json!([
            { "resolvedVersion": "1.4.2", "definition": { "version": "1.4.2", "status": "DEPRECATED" } },
            { "resolvedVersion": "2.0.3", "definition": { "version": "2.0.3", "status": "PUBLISHED" } },
        ])
    );

    // A platform agent resolves over platform skills only.
    let input = json!({ "input": { "key": format!("helper-{}", app.id), "version": "1.0.0", "name": "Helper",
        "skills": [{ "skillKey": "summarize", "versionReq": "*" }], "platform": true } });
    app.ok(&op, CREATE_AGENT, input).await;
    let v = app
        .gql(&op, PUBLISH_AGENT, json!({ "key": format!("helper-{}", app.id), "version": "1.0.0", "platform": true }))
        .await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    app.cleanup().await;
}

#[tokio::test]
async fn platform_definitions_are_read_by_every_tenant_and_written_only_by_operators() {
    let app = app().await;
    let (acme, globex) = (tenant(&app, "acme"), tenant(&app, "globex"));
    let (ta, tg) = (member(&app, &acme), member(&app, &globex));
    let op = app.operator_token();
    let key = format!("translate-{}", app.id);
    let mut tap = Tap::new("catalogue.SkillDefinitionPublished").await;

    // Tenants cannot write the platform's definitions, not even with every catalogue scope.
    let v = app.gql(&ta, CREATE_SKILL, skill_input(&key, "1.0.0", true)).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");

    app.ok(&op, CREATE_SKILL, skill_input(&key, "1.0.0", true)).await;
    // A platform draft is the operators' alone.
    let v = app
        .gql(&ta, "query($k: String!) { skillDefinition(key: $k, version: \"1.0.0\") { key } }", json!({ "k": key }))
        .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    assert!(!listed_skills(&app, &ta, true).await.iter().any(|s| s.contains(&key)));
    let v = app.gql(&ta, PUBLISH_SKILL, json!({ "key": key, "version": "1.0.0", "platform": true })).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    let v = app.gql(&ta, PUBLISH_SKILL, json!({ "key": key, "version": "1.0.0" })).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");

    let d = app.ok(&op, PUBLISH_SKILL, json!({ "key": key, "version": "1.0.0", "platform": true })).await;
    assert_eq!(d["publishSkillDefinition"]["platform"], true);
    let e = event_about(&mut tap, "SkillDefinitionPublished", TenantId::PLATFORM, "skillKey", &key).await;
    assert_eq!(e["payload"]["platform"], true);
    assert_eq!(e["payload"]["inputSchema"], schema());

    // Every tenant reads it beside its own; includePlatform: false leaves it out.
    published_skill(&app, &ta, "notes", "0.1.0", false).await;
    for (token, own) in [(&ta, vec!["own:notes@0.1.0".to_string()]), (&tg, vec![])] {
        let d = app
            .ok(
                token,
                "query($k: String!) { skillDefinition(key: $k) { key version platform status } }",
                json!({ "k": key }),
            )
            .await;
        assert_eq!(
            d["skillDefinition"],
            json!({ "key": key, "version": "1.0.0", "platform": true, "status": "PUBLISHED" })
        );
        let all = listed_skills(&app, token, true).await;
        assert!(all.contains(&format!("platform:{key}@1.0.0")), "{all:?}");
        assert_eq!(listed_skills(&app, token, false).await, own);
    }

    // A tenant's own version of the same key shadows the platform's at the same version, not a newer one.
    published_skill(&app, &tg, &key, "1.0.0", false).await;
    let q = "query($k: String!, $v: String) { skillDefinition(key: $k, version: $v) { version platform } }";
    let d = app.ok(&tg, q, json!({ "k": key, "v": "1.0.0" })).await;
    assert_eq!(d["skillDefinition"]["platform"], false);
    published_skill(&app, &op, &key, "1.1.0", true).await;
    let d = app.ok(&tg, q, json!({ "k": key })).await;
    assert_eq!(d["skillDefinition"], json!({ "version": "1.1.0", "platform": true }));

    // Tenants cannot change it, and the database would not let them either.
    let v = app.gql(&tg, DEPRECATE_SKILL, json!({ "key": key, "version": "1.1.0", "platform": true })).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    let mut conn = PgConnection::connect(&app.db.app_url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(&globex).execute(&mut *tx).await.unwrap();
    let hit = sqlx::query("UPDATE skill_definitions SET name = 'pwned' WHERE tenant_id = 'platform'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(hit, 0);
    let err = tx
        .execute(
            "INSERT INTO skill_definitions (tenant_id, skill_key, version, version_order, name, input_schema, output_schema)
             VALUES ('platform', 'fake', '1.0.0', '1', 'Fake', 'true', 'true')",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // Operators read the platform's definitions (not the tenants'), and page through them.
    let d = app
        .ok(&op, "query($k: String!) { skillDefinitions(first: 1, key: $k) { edges { cursor node { version platform } } pageInfo { hasNextPage } } }", json!({ "k": key }))
        .await;
    let c = &d["skillDefinitions"];
    assert_eq!(c["edges"][0]["node"], json!({ "version": "1.0.0", "platform": true }));
    assert_eq!(c["pageInfo"]["hasNextPage"], true);
    let after = c["edges"][0]["cursor"].as_str().unwrap();
    let d = app
        .ok(&op, "query($k: String!, $a: String) { skillDefinitions(first: 1, key: $k, after: $a) { edges { node { version } } pageInfo { hasNextPage } } }", json!({ "k": key, "a": after }))
        .await;
    assert_eq!(d["skillDefinitions"]["edges"][0]["node"]["version"], "1.1.0");
    assert_eq!(d["skillDefinitions"]["pageInfo"]["hasNextPage"], false);
    app.cleanup().await;
}

#[tokio::test]
async fn another_tenant_can_neither_see_nor_change_a_tenants_definitions() {
    let app = app().await;
    let (acme, globex) = (tenant(&app, "acme"), tenant(&app, "globex"));
    let (ta, tg) = (member(&app, &acme), member(&app, &globex));

    published_skill(&app, &ta, "summarize", "1.0.0", false).await;
    app.ok(&ta, CREATE_SKILL, skill_input("summarize", "1.1.0", false)).await;
    let input = json!({ "input": { "key": "writer", "version": "1.0.0", "name": "W",
        "skills": [{ "skillKey": "summarize", "versionReq": "^1" }] } });
    app.ok(&ta, CREATE_AGENT, input.clone()).await;
    app.ok(&ta, PUBLISH_AGENT, json!({ "key": "writer", "version": "1.0.0" })).await;

    for q in [
        "{ skillDefinition(key: \"summarize\") { key } }",
        "{ skillDefinition(key: \"summarize\", version: \"1.1.0\") { key } }",
        "{ agentDefinition(key: \"writer\") { key } }",
    ] {
        assert_eq!(code(&app.gql(&tg, q, json!({})).await), "NOT_FOUND", "{q}");
    }
    assert_eq!(listed_skills(&app, &tg, false).await, Vec::<String>::new());
    let d = app.ok(&tg, "{ agentDefinitions { edges { node { key } } } }", json!({})).await;
    assert_eq!(d["agentDefinitions"]["edges"], json!([]));

    let v =
        app.gql(&tg, UPDATE_SKILL, json!({ "input": { "key": "summarize", "version": "1.1.0", "name": "X" } })).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let v = app.gql(&tg, DEPRECATE_SKILL, json!({ "key": "summarize", "version": "1.0.0" })).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    // globex's agents cannot use acme's skills.
    app.ok(&tg, CREATE_AGENT, input).await;
    let v = app.gql(&tg, PUBLISH_AGENT, json!({ "key": "writer", "version": "1.0.0" })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");

    // Reading needs catalogue:read; writing catalogue:write.
    let ro = app.tenant_token(&acme, &["catalogue:read"]);
    assert_eq!(listed_skills(&app, &ro, false).await, vec!["own:summarize@1.0.0", "own:summarize@1.1.0"]);
    let v = app.gql(&ro, CREATE_SKILL, skill_input("other", "1.0.0", false)).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    app.cleanup().await;
}

#[tokio::test]
async fn missing_references_are_the_keys_without_a_published_version_of_the_tenant_or_the_platform() {
    let app = app().await;
    let acme = tenant(&app, "acme");
    let t = member(&app, &acme);
    let op = app.operator_token();
    let platform_skill = format!("ocr-{}", app.id);

    published_skill(&app, &t, "summarize", "1.0.0", false).await;
    app.ok(&t, CREATE_SKILL, skill_input("draft-only", "1.0.0", false)).await;
    published_skill(&app, &op, &platform_skill, "1.0.0", true).await;
    app.ok(&t, CREATE_AGENT, json!({ "input": { "key": "writer", "version": "1.0.0", "name": "W" } })).await;
    app.ok(&t, PUBLISH_AGENT, json!({ "key": "writer", "version": "1.0.0" })).await;
    app.ok(&t, CREATE_AGENT, json!({ "input": { "key": "drafty", "version": "1.0.0", "name": "D" } })).await;

    let tenant_id = TenantId::parse(&acme).unwrap();
    let mut tx = app.state.kernel.db.tenant_tx(&tenant_id).await.unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (agents, skills) = catalogue::registry::missing_references(
        &mut tx,
        &tenant_id,
        &s(&["writer", "drafty", "nobody", "nobody"]),
        &s(&["summarize", &platform_skill, "draft-only", "nothing"]),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(agents, s(&["drafty", "nobody"]));
    assert_eq!(skills, s(&["draft-only", "nothing"]));

    // Another tenant sees the platform's skill but none of acme's.
    let other = TenantId::parse(&tenant(&app, "globex")).unwrap();
    let mut tx = app.state.kernel.db.tenant_tx(&other).await.unwrap();
    let (agents, skills) =
        catalogue::registry::missing_references(&mut tx, &other, &s(&["writer"]), &s(&["summarize", &platform_skill]))
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((agents, skills), (s(&["writer"]), s(&["summarize"])));
    app.cleanup().await;
}
