//! Every domain's partner tasks through the SDK (`clients/sdk`), against the live supergraph through the
//! public endpoint alone: tenancy's lifecycle, editions, flags and quotas as an operator and a tenant;
//! identity's roles, principals, OAuth clients and API tokens; catalogue's environments, module registry,
//! dependencies and blueprints; governance's policies, decisions, approvals, integrations, model
//! policies, usage and the audit log with a proof verified on the client; workflow's definitions and
//! instances, started, inspected, watched and cancelled.

use std::time::Duration;

use cp_sdk::ops::catalogue::{
    ChangeStatus, CreateProjectInput, DependencyDirection, EnvironmentName, ModuleFilter, RegisterModuleInput,
    UpdateModuleInput,
};
use cp_sdk::ops::governance::{
    ApprovalStatus, CreateIntegrationConnectionInput, DraftModelPolicyInput, DraftPolicyInput, IntegrationKind,
    ModelAllowanceInput, ModelTaskInput, PolicyEffect, PolicyEntityInput, PolicyRequestInput, PolicyStatus,
    RequestApprovalInput, SecretRefInput, UsageRecordInput,
};
use cp_sdk::ops::identity::{CreateApiTokenInput, CreatePrincipalInput, DefineRoleInput, PrincipalKind};
use cp_sdk::ops::tenancy::{
    CreateEditionInput, FeatureFlagInput, FlagReason, IsolationModel, Period, ProvisionTenantInput, QuotaLimitInput,
    TenantStatus,
};
use cp_sdk::ops::workflow::{PublishWorkflowDefinitionInput, StartWorkflowInput, WorkflowStatus, WorkflowStepInput};
use cp_sdk::{Client, Credentials, ErrorCode};
use futures::TryStreamExt;

use e2e::{Live, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_domains_partner_tasks_run_through_the_sdk() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    // The audit log of what this test does in tenancy, identity and catalogue.
    stack.audit(&["tenancy.#", "identity.#", "catalogue.#"]).await;
    let base = hive.url.trim_end_matches("/graphql").to_owned();
    let operator = Client::new(&base, Credentials::Token(stack.operator_token())).unwrap();

    // Tenancy, as the platform's operator: an edition, a tenant on it, a flag for it, its quota.
    let (edition, tenant) = (format!("ed-sdk-{}", stack.id), format!("sdk-all-{}", stack.id));
    let draft = operator
        .create_edition(CreateEditionInput {
            id: edition.clone(),
            name: "SDK edition".into(),
            feature_set: vec!["sso".into()],
            quota_template: vec![QuotaLimitInput { key: "api-calls".into(), limit: 100, period: Period::Day }],
        })
        .await
        .unwrap();
    operator.publish_edition(&edition, draft.version).await.unwrap();
    assert_eq!(operator.edition(&edition, None).await.unwrap().feature_set, ["sso"]);
    let provisioned = operator
        .provision_tenant(ProvisionTenantInput {
            id: cynic::Id::new(&tenant),
            display_name: "All Domains Co".into(),
            region: "eu-west".into(),
            edition_id: edition.clone(),
            isolation_model: IsolationModel::Shared,
        })
        .await
        .unwrap();
    assert_eq!(provisioned.status, TenantStatus::Provisioning);
    operator.activate_tenant(cynic::Id::new(&tenant), None).await.unwrap();
    let active: Vec<_> = operator.tenants(Some(TenantStatus::Active), 2).try_collect().await.unwrap();
    assert!(active.iter().any(|t| t.id.inner() == tenant), "the new tenant is among the active ones");
    let flag = format!("flag-{}", stack.id);
    operator
        .set_feature_flag(FeatureFlagInput {
            key: flag.clone(),
            enabled: true,
            rollout_percent: 0,
            description: "for the SDK test".into(),
            editions: vec![],
            allow_tenants: vec![tenant.clone()],
            deny_tenants: vec![],
        })
        .await
        .unwrap();
    assert!(operator.feature_flag_definitions().await.unwrap().iter().any(|f| f.key == flag));
    let quota = QuotaLimitInput { key: "api-calls".into(), limit: 5, period: Period::Day };
    assert_eq!(operator.set_quota(cynic::Id::new(&tenant), quota).await.unwrap().limit, 5);
    let id = || cynic::Id::new(&tenant);
    assert_eq!(operator.tenant(id()).await.unwrap().edition_id, edition);
    let editions: Vec<_> = operator.editions(50).try_collect().await.unwrap();
    assert!(editions.iter().any(|e| e.id == edition));
    assert!(operator.set_legal_hold(id(), true).await.unwrap().legal_hold);
    assert!(!operator.set_legal_hold(id(), false).await.unwrap().legal_hold);
    assert_eq!(operator.suspend_tenant(id(), "audit").await.unwrap().status, TenantStatus::Suspended);
    assert_eq!(operator.activate_tenant(id(), Some("done".into())).await.unwrap().status, TenantStatus::Active);
    let (second, old) = (format!("ed2-sdk-{}", stack.id), format!("old-sdk-{}", stack.id));
    for e in [&second, &old] {
        let input = CreateEditionInput { id: e.clone(), name: e.clone(), feature_set: vec![], quota_template: vec![] };
        let v = operator.create_edition(input).await.unwrap().version;
        operator.publish_edition(e, v).await.unwrap();
    }
    assert_eq!(operator.change_tenant_edition(id(), &second).await.unwrap().edition_id, second);
    assert_eq!(operator.change_tenant_edition(id(), &edition).await.unwrap().edition_id, edition);
    assert_eq!(operator.retire_edition(&old, 1).await.unwrap().status, cp_sdk::ops::tenancy::EditionStatus::Retired);
    let quota = QuotaLimitInput { key: "api-calls".into(), limit: 5, period: Period::Day };
    operator.set_quota(id(), quota).await.unwrap();

    // The tenant's own client (client credentials through the public endpoint).
    let (client_id, client_secret, _) = stack.oauth_client(&hive.url, &tenant, &e2e::PARTNER_PERMISSIONS).await;
    let (tour_id, tour_secret) = (client_id.clone(), client_secret.clone());
    let client = Client::new(&base, Credentials::ClientCredentials { client_id, client_secret, scope: None }).unwrap();
    let me = client.me().await.unwrap();
    assert_eq!(client.current_tenant().await.unwrap().quotas[0].limit, 5);
    let evaluated = client.feature_flag(&flag).await.unwrap();
    assert_eq!((evaluated.enabled, evaluated.reason), (true, FlagReason::Allowed));
    assert_eq!(client.consume_quota("api-calls", 2).await.unwrap().remaining, 3);
    let over = client.consume_quota("api-calls", 4).await.unwrap_err();
    assert_eq!(over.code(), Some(&ErrorCode::QuotaExceeded), "{over}");
    assert_eq!(client.rename_tenant("All Domains Ltd").await.unwrap().display_name, "All Domains Ltd");
    assert!(client.feature_flags().await.unwrap().iter().any(|f| f.key == flag && f.enabled));
    assert!(operator.delete_feature_flag(&flag).await.unwrap());
    // The deleted flag leaves each replica's snapshot as its `FeatureFlagDeleted` event arrives.
    test_support::eventually("the deleted flag to be unknown", Duration::from_secs(10), || async {
        client.feature_flag(&flag).await.unwrap().reason == FlagReason::UnknownFlag
    })
    .await;

    // Identity: a reviewer role, a service principal holding it, its OAuth client and API token.
    let role = DefineRoleInput {
        key: "reviewer".into(),
        description: "decides approvals".into(),
        permissions: vec!["approvals:decide".into(), "governance:read".into()],
    };
    client.define_role(role).await.unwrap();
    assert!(client.roles().await.unwrap().iter().any(|r| r.key == "reviewer"));
    let bot = client
        .create_principal(CreatePrincipalInput {
            kind: PrincipalKind::Service,
            display_name: "bot".into(),
            email: None,
        })
        .await
        .unwrap();
    assert!(client.bind_role(bot.id, "reviewer").await.unwrap());
    assert_eq!(client.principal(bot.id).await.unwrap().roles[0].key, "reviewer");
    let everyone: Vec<_> = client.principals(1).try_collect().await.unwrap();
    let mut ids: Vec<_> = everyone.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    let mut want = vec![me.id, bot.id];
    want.sort_unstable();
    assert_eq!(ids, want, "the partner's own principal and the bot, one page at a time");
    let scopes = vec!["approvals:decide".to_owned(), "governance:read".to_owned()];
    let bot_client = client.create_oauth_client(bot.id, scopes).await.unwrap();
    assert!(client.oauth_clients().await.unwrap().iter().any(|c| c.client_id == bot_client.client.client_id));
    let rotated = client.rotate_oauth_client_secret(&bot_client.client.client_id).await.unwrap();
    assert_ne!(rotated.client_secret, bot_client.client_secret);
    let token = client
        .create_api_token(CreateApiTokenInput {
            principal_id: cynic::Id::new(bot.id.to_string()),
            name: "nightly".into(),
            scopes: vec!["governance:read".into()],
            expires_in_days: 1,
        })
        .await
        .unwrap();
    assert!(token.token.starts_with("cpt_"));
    assert!(client.revoke_api_token(token.api_token.id).await.unwrap());
    let spare = client.create_oauth_client(bot.id, vec!["governance:read".into()]).await.unwrap();
    assert!(client.revoke_oauth_client(&spare.client.client_id).await.unwrap().revoked_at.is_some());
    let tokens = client.api_tokens().await.unwrap();
    assert!(tokens.iter().find(|t| t.id == token.api_token.id).unwrap().revoked_at.is_some());

    // Catalogue: a project, an environment changed, two modules and a dependency, a blueprint.
    let input = CreateProjectInput { slug: "shop".into(), name: "Shop".into(), description: "the shop".into() };
    let project = client.create_project(input).await.unwrap();
    assert_eq!(client.project_by_slug("shop").await.unwrap().id, project.id);
    let renamed = cp_sdk::ops::catalogue::UpdateProjectInput { name: Some("The Shop".into()), ..Default::default() };
    client.update_project(project.id.clone(), renamed).await.unwrap();
    assert_eq!(client.project(project.id.clone()).await.unwrap().name, "The Shop");
    let changed = client
        .change_environment(project.id.clone(), EnvironmentName::Staging, serde_json::json!({ "replicas": 3 }), "scale")
        .await
        .unwrap();
    assert_eq!(changed.change.status, ChangeStatus::Applied);
    let staging = client.environment(project.id.clone(), EnvironmentName::Staging).await.unwrap();
    assert_eq!(
        (staging.version, &staging.config),
        (changed.environment.version, &serde_json::json!({ "replicas": 3 }))
    );
    let history = client.environment_changes(project.id.clone(), EnvironmentName::Staging, Some(5)).await.unwrap();
    assert_eq!(history.len(), 1);
    let module = |name: &str, version: &str| RegisterModuleInput {
        project_id: project.id.clone(),
        name: name.into(),
        kind: "service".into(),
        version: version.into(),
        owner: "team-a".into(),
        tags: vec!["core".into()],
        metadata: None,
    };
    let api = client.register_module(module("api", "1.4.0")).await.unwrap();
    let web = client.register_module(module("web", "2.0.0")).await.unwrap();
    client.add_dependency(web.id.clone(), api.id.clone(), "^1.2").await.unwrap();
    let reached = client.transitive_dependencies(web.id.clone(), DependencyDirection::Dependencies, 5).await.unwrap();
    assert_eq!(reached.iter().map(|r| r.module_id.inner()).collect::<Vec<_>>(), [api.id.inner()]);
    let impact = client.impact_analysis(api.id.clone(), Some("2.0.0")).await.unwrap();
    assert_eq!(impact.breaking.len(), 1, "web's ^1.2 does not take 2.0.0");
    let order = client.build_order(project.id.clone()).await.unwrap();
    let stages: Vec<Vec<&str>> = order.iter().map(|s| s.modules.iter().map(|m| m.name.as_str()).collect()).collect();
    assert_eq!(stages, [vec!["api"], vec!["web"]]);
    let filter = ModuleFilter { search: Some("we".into()), ..Default::default() };
    let found: Vec<_> = client.modules(Some(project.id.clone()), Some(filter), 10).try_collect().await.unwrap();
    assert_eq!(found.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["web"]);
    let bumped = UpdateModuleInput { version: Some("1.5.0".into()), ..Default::default() };
    assert_eq!(client.update_module(api.id.clone(), bumped).await.unwrap().version, "1.5.0");
    assert_eq!(client.module(api.id.clone()).await.unwrap().version, "1.5.0");
    assert!(client.remove_dependency(web.id.clone(), api.id.clone()).await.unwrap());
    assert_eq!(client.remove_module(web.id.clone()).await.unwrap(), web.id);
    let blueprint = client.create_blueprint(project.id.clone(), "checkout", "the checkout").await.unwrap();
    let definition = serde_json::json!({ "contexts": [{ "name": "orders", "modules": ["api"], "aggregates": [] }] });
    let draft = client.draft_blueprint_version(blueprint.id.clone(), definition, None).await.unwrap();
    let run = client.validate_blueprint(blueprint.id.clone(), draft.version).await.unwrap();
    assert_eq!(run.version, draft.version);
    assert_eq!(client.blueprint(blueprint.id.clone()).await.unwrap().name, "checkout");

    // Governance: a policy decides; an approval is decided by the bot; an integration and a model policy;
    // usage recorded once whatever the retries; the audit log proven against its signed checkpoint.
    let policy = client
        .draft_policy(DraftPolicyInput {
            name: "no-writes".into(),
            description: String::new(),
            effect: PolicyEffect::Deny,
            cedar: r#"forbid(principal, action == Action::"write", resource);"#.into(),
            platform: false,
        })
        .await
        .unwrap();
    assert_eq!(client.publish_policy(policy.id.clone()).await.unwrap().status, PolicyStatus::Published);
    let request = |action: &str| PolicyRequestInput {
        principal: PolicyEntityInput::new("Principal", "alice"),
        action: action.into(),
        resource: PolicyEntityInput::new("Project", "shop"),
        context: None,
    };
    let denied = client.evaluate_policy(request("write")).await.unwrap();
    assert_eq!(denied.effect, PolicyEffect::Deny);
    assert_eq!(denied.determining_policies[0].id, policy.id);
    let denials: Vec<_> = client.decisions(Some(PolicyEffect::Deny), 10).try_collect().await.unwrap();
    assert_eq!(denials.iter().map(|d| &d.id).collect::<Vec<_>>(), [&denied.id]);
    assert_eq!(client.decision(denied.id.clone()).await.unwrap().action, denied.action);
    let published: Vec<_> = client.policies(Some(PolicyStatus::Published), 10).try_collect().await.unwrap();
    assert!(published.iter().any(|p| p.id == policy.id));
    assert_eq!(client.deprecate_policy(policy.id).await.unwrap().status, PolicyStatus::Deprecated);
    let draft = client
        .draft_policy(DraftPolicyInput {
            name: "readers".into(),
            description: String::new(),
            effect: PolicyEffect::Allow,
            cedar: r#"permit(principal, action == Action::"read", resource);"#.into(),
            platform: false,
        })
        .await
        .unwrap();
    let changed = cp_sdk::ops::governance::UpdatePolicyDraftInput {
        description: Some("everyone reads".into()),
        ..Default::default()
    };
    client.update_policy_draft(draft.id.clone(), changed).await.unwrap();
    assert_eq!(client.policy(draft.id).await.unwrap().description, "everyone reads");

    let gate = client
        .request_approval(RequestApprovalInput {
            subject_kind: "release.Gate".into(),
            subject_id: "r-1".into(),
            summary: "release 1".into(),
            details: None,
            approver_roles: vec!["reviewer".into()],
            quorum: 1,
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
            project_id: None,
        })
        .await
        .unwrap();
    let pending: Vec<_> = client.approvals(Some(ApprovalStatus::Pending), 10).try_collect().await.unwrap();
    assert_eq!(pending.iter().map(|a| &a.id).collect::<Vec<_>>(), [&gate.id]);
    let reviewer = Client::new(
        &base,
        Credentials::ClientCredentials {
            client_id: rotated.client.client_id.clone(),
            client_secret: rotated.client_secret.clone(),
            scope: None,
        },
    )
    .unwrap();
    // Governance learns the bot's role from identity's RoleBound event.
    let approved = test_support::eventually_value("the reviewer's vote to count", Duration::from_secs(20), || async {
        reviewer.approve(gate.id.clone(), Some("ship it".into())).await.ok()
    })
    .await;
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(client.approval(gate.id.clone()).await.unwrap().votes[0].note.as_deref(), Some("ship it"));
    let second = client
        .request_approval(RequestApprovalInput { subject_id: "r-2".into(), ..request_again(&gate) })
        .await
        .unwrap();
    assert_eq!(client.cancel_approval(second.id.clone()).await.unwrap().status, ApprovalStatus::Cancelled);
    let third = client
        .request_approval(RequestApprovalInput { subject_id: "r-3".into(), ..request_again(&gate) })
        .await
        .unwrap();
    assert_eq!(reviewer.reject(third.id, None).await.unwrap().status, ApprovalStatus::Rejected);

    // A tenant's `env:` references name variables under its own prefix; this process runs governance.
    let prefix = format!("CP_SECRET_{}__", tenant.to_uppercase().replace('-', "_"));
    std::env::set_var(format!("{prefix}GIT_TOKEN"), "ghp_example");
    let git = client
        .create_integration(CreateIntegrationConnectionInput {
            kind: IntegrationKind::GitHosting,
            name: "github".into(),
            provider: "github".into(),
            secrets: vec![SecretRefInput { name: "token".into(), config_ref: format!("env:{prefix}GIT_TOKEN") }],
            settings: Some(serde_json::json!({ "org": "acme" })),
        })
        .await
        .unwrap();
    assert!(client.test_integration(git.id.clone()).await.unwrap().ok, "the reference resolves");
    let missing = SecretRefInput { name: "token".into(), config_ref: format!("env:{prefix}MISSING") };
    client.rotate_integration_secret(git.id.clone(), missing).await.unwrap();
    let test = client.test_integration(git.id.clone()).await.unwrap();
    assert!(!test.ok && !test.secrets[0].ok, "a reference that resolves to nothing fails its test");
    let listed: Vec<_> = client.integrations(10).try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
    let off = cp_sdk::ops::governance::UpdateIntegrationConnectionInput {
        status: Some(cp_sdk::ops::governance::IntegrationStatus::Disabled),
        ..Default::default()
    };
    let disabled = client.update_integration(git.id.clone(), off).await.unwrap();
    assert_eq!(disabled.status, cp_sdk::ops::governance::IntegrationStatus::Disabled);

    let mp = client
        .draft_model_policy(DraftModelPolicyInput {
            name: "agents".into(),
            allowed: vec![ModelAllowanceInput { provider: "openai".into(), models: vec!["gpt-5".into()] }],
            max_tokens_per_task: Some(20_000),
            max_cost_per_day_cents: None,
            project_id: None,
            skill_key: None,
        })
        .await
        .unwrap();
    client.publish_model_policy(mp.id.clone()).await.unwrap();
    let task = |model: &str| ModelTaskInput {
        provider: "openai".into(),
        model: model.into(),
        tokens: Some(1_000),
        cost_today_cents: None,
        project_id: None,
        skill_key: None,
    };
    assert!(client.evaluate_model_policy(task("gpt-5")).await.unwrap().allowed);
    assert!(!client.evaluate_model_policy(task("other")).await.unwrap().allowed);
    let listed: Vec<_> = client.model_policies(10).try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(client.deprecate_model_policy(mp.id).await.unwrap().status, PolicyStatus::Deprecated);

    let at = chrono::Utc::now() - chrono::Duration::minutes(1);
    let record = UsageRecordInput {
        meter: "build-minutes".into(),
        quantity: 12,
        occurred_at: at,
        idempotency_key: "build-1".into(),
        dimensions: Some(serde_json::json!({ "runner": "linux" })),
    };
    assert_eq!(client.record_usage(vec![record.clone()]).await.unwrap().accepted, 1);
    assert_eq!(client.record_usage(vec![record]).await.unwrap().duplicates, 1, "the same key counts once");
    let report = client
        .usage("build-minutes", at - chrono::Duration::hours(1), chrono::Utc::now(), Some("runner"))
        .await
        .unwrap();
    assert_eq!((report.quantity, report.groups[0].value.as_deref()), (12, Some("linux")));

    // The audit log holds the tenant's events; one is proven on the client with the pinned key.
    let entries = test_support::eventually_value("audit entries", Duration::from_secs(20), || async {
        let entries: Vec<_> = client.audit_entries(50).try_collect().await.ok()?;
        (entries.len() >= 5).then_some(entries)
    })
    .await;
    let entry = &entries[2];
    assert_eq!(client.audit_entry(entry.sequence).await.unwrap().hash, entry.hash, "one entry by its sequence");
    let checkpoint = client.prove_audit_entry(entry, &stack.audit_verifier_key).await.unwrap();
    assert_eq!(checkpoint.origin, format!("e2e.example/audit/{tenant}"));
    assert!(checkpoint.tree_size >= entries.len() as u64);
    // A changed entry, another key, another tenant's origin: each is refused.
    let forged = cp_sdk::ops::governance::AuditEntry { canonical: entry.canonical.replace('1', "2"), ..entry.clone() };
    let refused = client.prove_audit_entry(&forged, &stack.audit_verifier_key).await.unwrap_err();
    assert!(matches!(refused, cp_sdk::Error::Verification(_)), "{refused}");
    let refused = client.prove_audit_entry(entry, &e2e::foreign_audit_verifier_key()).await.unwrap_err();
    assert!(refused.to_string().contains("signature"), "{refused}");
    let signed = client.audit_checkpoint(None).await.unwrap();
    let refused = cp_sdk::audit::verify_checkpoint(&signed, &stack.audit_verifier_key, Some("someone-else"));
    assert!(refused.is_err(), "a checkpoint is of its own tenant's log");
    let verified = client.verify_audit(1, None).await.unwrap();
    assert!(verified.ok && verified.first_broken.is_none(), "{verified:?}");
    let exports = client.export_audit_log().await.unwrap();
    let ranges: Vec<_> = exports.iter().map(|e| (e.from_sequence, e.to_sequence)).collect();
    assert_eq!(ranges[0].0, 1, "from the first entry: {ranges:?}");
    assert!(ranges.windows(2).all(|w| w[1].0 == w[0].1 + 1), "contiguous: {ranges:?}");
    assert!(ranges.iter().all(|(from, to)| to - from < 4), "at most four entries an object: {ranges:?}");

    // Workflow: a definition published, an instance watched to its end, another cancelled.
    let definition = PublishWorkflowDefinitionInput {
        key: "cool-down".into(),
        name: "Cool down".into(),
        description: String::new(),
        start: "pause".into(),
        steps: vec![WorkflowStepInput::wait("pause", 1)],
        continue_as_new_after: None,
    };
    let published = client.publish_workflow_definition(definition.clone()).await.unwrap();
    assert_eq!(published.version, 1);
    let listed: Vec<_> = client.workflow_definitions(false, 10).try_collect().await.unwrap();
    assert_eq!(listed.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), ["cool-down"]);
    assert!(client.workflow_definition("cool-down", None, false).await.unwrap().is_some());
    let instance = client.start_workflow(StartWorkflowInput::new("cool-down")).await.unwrap();
    let states: Vec<_> = client.watch_workflow(instance.id.clone()).try_collect().await.unwrap();
    assert_eq!(states.last().unwrap().status, WorkflowStatus::Completed, "{states:?}");
    assert!(states.windows(2).all(|w| w[0].version < w[1].version), "each state once, in order");
    let inspected = client.workflow_instance(instance.id.clone()).await.unwrap().unwrap();
    assert_eq!(inspected.version, states.last().unwrap().version);
    let history = client.workflow_history(instance.id.clone(), 0, 100).await.unwrap();
    assert_eq!(history.len() as i32, inspected.version);
    let long = client
        .publish_workflow_definition(PublishWorkflowDefinitionInput {
            key: "long-wait".into(),
            steps: vec![WorkflowStepInput::wait("pause", 3600)],
            ..definition
        })
        .await
        .unwrap();
    let waiting = client.start_workflow(StartWorkflowInput::new(&long.key)).await.unwrap();
    let cancelled = client.cancel_workflow(waiting.id.clone(), "not needed").await.unwrap();
    assert_eq!(cancelled.status, WorkflowStatus::Cancelled);
    // Lists read the process-state projection, which follows the event store within moments.
    test_support::eventually("the completed instance to be listed", Duration::from_secs(10), || async {
        let done: Vec<_> =
            client.workflow_instances(Some(WorkflowStatus::Completed), None, 10).try_collect().await.unwrap();
        done.iter().map(|i| &i.id).collect::<Vec<_>>() == [&instance.id]
    })
    .await;
    // The tenant's workflow events, live: a subscription that is open before an instance starts sees it.
    let mut events = Live::spawn(client.workflow_events(None, vec![]));
    let seen = events
        .act_until(
            "live event of a new instance",
            |_| async { client.start_workflow(StartWorkflowInput::new("cool-down")).await.unwrap().id },
            |started, e| e.as_ref().expect("a live event").instance_id.as_ref() == Some(started),
        )
        .await
        .unwrap();
    assert!(!seen.event_type.is_empty(), "{seen:?}");
    drop(events);

    // The SDK's example, as a partner runs it against `scripts/up`, here against this stack.
    let exe = std::env::current_exe().unwrap();
    let tour = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples/tour");
    let out = tokio::process::Command::new(&tour)
        .env("CP_ENDPOINT", &base)
        .env("CP_CLIENT_ID", &tour_id)
        .env("CP_CLIENT_SECRET", &tour_secret)
        .env_remove("CP_TOKEN")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (built by cargo build --workspace --all-targets)", tour.display()));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the tour example failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains(&format!("tenant All Domains Ltd ({tenant})")) && printed.contains("shop"), "{printed}");

    // Last: what ends things.
    assert_eq!(
        client.archive_project(project.id).await.unwrap().status,
        cp_sdk::ops::catalogue::ProjectStatus::Archived
    );
    let disabled = client.disable_principal(bot.id).await.unwrap();
    assert_eq!(disabled.status, cp_sdk::ops::identity::PrincipalStatus::Disabled);
    assert_eq!(operator.retire_tenant(id(), Some("done".into())).await.unwrap().status, TenantStatus::Retired);

    hive.stop().await;
    stack.stop().await;
}

/// `gate`'s request again, for another subject.
fn request_again(gate: &cp_sdk::ops::governance::Approval) -> RequestApprovalInput {
    RequestApprovalInput {
        subject_kind: gate.subject_kind.clone(),
        subject_id: gate.subject_id.clone(),
        summary: gate.summary.clone(),
        details: None,
        approver_roles: gate.approver_roles.clone(),
        quorum: gate.quorum,
        expires_at: gate.expires_at,
        project_id: None,
    }
}
