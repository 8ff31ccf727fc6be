//! The partner SDK (`clients/sdk`, cynic operations checked against schema/api.graphql) against the live
//! supergraph through the public endpoint alone: client credentials fetched once and reused, the tenant,
//! principals as a paged stream, an artifact recorded with its body uploaded and downloaded (resumed from
//! an offset), the lineage graph, and the API's errors as typed codes.

use cp_sdk::ops::catalogue::CreateProjectInput;
use cp_sdk::ops::lineage::{
    content_hash, ArtifactClassification, ArtifactVersionRef, LineageDirection, RecordArtifactVersionInput, RecordedAs,
    RegisterArtifactInput,
};
use cp_sdk::ops::workflow::{PublishWorkflowDefinitionInput, StartWorkflowInput, WorkflowStatus, WorkflowStepInput};
use cp_sdk::{Client, Credentials, ErrorCode};
use futures::{StreamExt, TryStreamExt};
use std::time::Duration;

use e2e::{Live, Stack};

use crate::tenants_on_new_edition;

/// The report's 1.0.0 body from byte `from`, whole.
async fn download(client: &Client, from: u64) -> Vec<u8> {
    let chunks = client.download_body("report", "1.0.0", from).await.unwrap();
    chunks
        .try_fold(Vec::new(), |mut acc, b| async move {
            acc.extend_from_slice(&b);
            Ok(acc)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_operations_run_against_the_supergraph_through_the_public_endpoint() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("sdk-{}", stack.id);
    tenants_on_new_edition(&stack, &hive, &[&tenant], "SDK Co").await;
    let permissions =
        ["tenancy:read", "identity:read", "catalogue:read", "catalogue:write", "lineage:read", "lineage:write"];
    let (client_id, client_secret, _) = stack.oauth_client(&hive.url, &tenant, &permissions).await;
    let base = hive.url.trim_end_matches("/graphql").to_owned();
    let client = Client::new(&base, Credentials::ClientCredentials { client_id, client_secret, scope: None }).unwrap();

    // Tenancy.
    let t = client.current_tenant().await.unwrap();
    assert_eq!((t.id.inner(), t.display_name.as_str()), (tenant.as_str(), "SDK Co"));

    // Identity: five more principals, read two at a time as one stream.
    let op = stack.operator_token();
    for i in 0..5 {
        stack
            .ok(&hive.url, &op, "mutation($t: ID, $n: String!) { createPrincipal(tenantId: $t, input: { kind: USER, displayName: $n }) { id } }", serde_json::json!({ "t": tenant, "n": format!("user {i}") }))
            .await;
    }
    let everyone: Vec<_> = client.principals(2).try_collect().await.unwrap();
    assert_eq!(everyone.len(), 6, "the partner's own principal and five users");
    let mut ids: Vec<_> = everyone.iter().map(|p| p.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 6, "no principal twice across pages");

    // Catalogue: three projects (each with its four environments), read back a page of two at a time.
    for i in 0..3 {
        let input =
            CreateProjectInput { slug: format!("proj-{i}"), name: format!("Project {i}"), description: String::new() };
        let p = client.create_project(input).await.unwrap();
        assert_eq!(p.environments.len(), 4);
    }
    let projects: Vec<_> = client.projects(2).try_collect().await.unwrap();
    let mut slugs: Vec<_> = projects.iter().map(|p| p.slug.as_str()).collect();
    slugs.sort_unstable();
    assert_eq!(slugs, ["proj-0", "proj-1", "proj-2"]);
    let taken = client
        .create_project(CreateProjectInput { slug: "proj-0".into(), name: "Again".into(), description: String::new() })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Some(&ErrorCode::Conflict), "{taken}");

    // Lineage: an artifact, two versions (the second derived from the first), a body up and down.
    let input = RegisterArtifactInput {
        id: "report".into(),
        artifact_type: "document".into(),
        name: "Quarterly report".into(),
        classification: ArtifactClassification::Internal,
        project_id: None,
    };
    client.register_artifact(input.clone()).await.unwrap();
    let body = b"numbers, numbers".repeat(10_000);
    let version = |v: &str, hash: String, from: Vec<ArtifactVersionRef>| RecordArtifactVersionInput {
        artifact_id: cynic::Id::new("report"),
        version: v.into(),
        content_hash: hash,
        status: RecordedAs::Generated,
        attributes: Some(serde_json::json!({ "prompt": "summarise" })),
        derived_from: from,
        produced_by_task_id: None,
    };
    client.record_artifact_version(version("1.0.0", content_hash(&body), vec![])).await.unwrap();
    let from = vec![ArtifactVersionRef { artifact_id: cynic::Id::new("report"), version: "1.0.0".into() }];
    client.record_artifact_version(version("1.1.0", content_hash(b"v2"), from)).await.unwrap();
    let stored = client.upload_body("report", "1.0.0", body.clone().into()).await.unwrap();
    assert_eq!((stored.size, stored.stored_now), (body.len() as u64, true));
    assert_eq!(download(&client, 0).await, body);
    assert_eq!(download(&client, 100).await, body[100..]);
    // Artifact changes, live through the supergraph: a subscription open before a version is recorded
    // sees it (recorded again under a new number until one arrives: nothing is replayed).
    let mut changes = Live::spawn(client.artifact_changes(Some(cynic::Id::new("report")), None));
    let change = changes
        .act_until(
            "artifact change",
            |patch| {
                let client = &client;
                async move {
                    let v = format!("1.2.{patch}");
                    client.record_artifact_version(version(&v, content_hash(v.as_bytes()), vec![])).await.unwrap();
                    v
                }
            },
            |v, c| &c.as_ref().expect("a change, not an error").version.version == v,
        )
        .await
        .unwrap();
    assert_eq!(change.event_type, "ArtifactVersionRecorded");
    drop(changes);
    let v = client.artifact_version("report", "1.0.0").await.unwrap().expect("the version");
    assert_eq!(v.body.expect("not redacted").state, cp_sdk::ops::lineage::ArtifactBodyState::Stored);
    let g = client.lineage("artifact:report@1.1.0", None, Some(LineageDirection::Upstream)).await.unwrap();
    assert_eq!(g.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["artifact:report@1.0.0"]);

    // Errors, typed: a bad artifact type names its field; a body of other content; nothing there.
    let bad = client.register_artifact(RegisterArtifactInput { artifact_type: "Not A Type".into(), ..input }).await;
    match bad {
        Err(cp_sdk::Error::Api { code: ErrorCode::BadUserInput, field, .. }) => {
            assert_eq!(field.as_deref(), Some("artifactType"))
        }
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
    let wrong = client.upload_body("report", "1.1.0", b"not v2".to_vec().into()).await.unwrap_err();
    assert_eq!(wrong.code(), Some(&ErrorCode::BadUserInput), "{wrong}");
    let missing = client.download_body("report", "9.9.9", 0).await.err().expect("no such version");
    assert_eq!(missing.code(), Some(&ErrorCode::NotFound), "{missing}");
    assert!(client.artifact_version("nothing", "1.0.0").await.unwrap().is_none());

    // One token served every call.
    assert_eq!(client.tokens_fetched(), 1);
    // Bad credentials are the token endpoint's refusal.
    let wrong = Client::new(
        &base,
        Credentials::ClientCredentials { client_id: "cpc_x".into(), client_secret: "cps_y".into(), scope: None },
    )
    .unwrap()
    .current_tenant()
    .await
    .unwrap_err();
    assert!(matches!(&wrong, cp_sdk::Error::Auth(why) if why.contains("invalid_client")), "{wrong}");
    hive.stop().await;
    stack.stop().await;
}

/// Identity's access tokens live this long in the test below: the SDK fetches a new one half-way.
const SHORT_TTL: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_survive_a_router_restart_and_tokens_are_refreshed_before_they_expire() {
    let stack = Stack::start_with(e2e::Options { access_token_ttl_seconds: SHORT_TTL }).await;
    let mut hive = stack.hive().await;
    let tenant = format!("sdk-live-{}", stack.id);
    tenants_on_new_edition(&stack, &hive, &[&tenant], "Live Co").await;
    let permissions = ["tenancy:read", "tenancy:write", "workflow:read", "workflow:write"];
    let (client_id, client_secret, _) = stack.oauth_client(&hive.url, &tenant, &permissions).await;
    let base = hive.url.trim_end_matches("/graphql").to_owned();
    let client = Client::new(&base, Credentials::ClientCredentials { client_id, client_secret, scope: None }).unwrap();

    // Token refresh: the first token is replaced half-way through its life, while it still works.
    let first = client.bearer().await.unwrap();
    client.current_tenant().await.unwrap();
    assert_eq!(client.bearer().await.unwrap(), first, "kept while fresh");
    tokio::time::sleep(Duration::from_secs(SHORT_TTL / 2) + Duration::from_millis(500)).await;
    let second = client.bearer().await.unwrap();
    assert_ne!(second, first, "a new token before the first expired");
    assert_eq!(client.tokens_fetched(), 2);
    let old = Client::new(&base, Credentials::Token(first)).unwrap();
    old.current_tenant().await.expect("the replaced token had not expired yet");

    // A watch on an instance that waits, and the tenant's events, both open.
    let definition = PublishWorkflowDefinitionInput {
        key: "pause".into(),
        name: "Pause".into(),
        description: String::new(),
        start: "pause".into(),
        steps: vec![WorkflowStepInput::wait("pause", 4)],
        continue_as_new_after: None,
    };
    client.publish_workflow_definition(definition).await.unwrap();
    let instance = client.start_workflow(StartWorkflowInput::new("pause")).await.unwrap();
    let mut watch = Box::pin(client.watch_workflow(instance.id.clone()));
    let waiting = watch.next().await.unwrap().unwrap();
    assert_eq!(waiting.status, WorkflowStatus::Waiting);
    let mut events = Live::spawn(client.tenant_events(None, vec!["TenantUpdated".into()]));

    // The router goes away while the instance completes, and comes back.
    hive.kill().await;
    let workflow_db = stack.workflow().admin_pool().await;
    test_support::eventually("the instance to complete with the router down", Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM process_state WHERE instance_id = $1::uuid")
            .bind(instance.id.inner())
            .fetch_one(&workflow_db)
            .await
            .is_ok_and(|s| s == "Completed")
    })
    .await;
    hive.resume().await;

    // The watch reconnected and resubscribed: it picks up where it was — the completed state, nothing
    // seen twice — and ends.
    let rest: Vec<_> =
        tokio::time::timeout(Duration::from_secs(30), watch.try_collect::<Vec<_>>()).await.expect("ends").unwrap();
    assert_eq!(rest.last().map(|s| s.status), Some(WorkflowStatus::Completed), "{rest:?}");
    assert!(rest.iter().all(|s| s.version > waiting.version), "nothing seen twice: {rest:?}");

    // The event stream reconnected too: a change made now reaches it (events published while no
    // connection was open are not replayed, so the change is made until one arrives).
    let mut n = 0;
    let rename = |client: &Client, n: &mut u32| {
        *n += 1;
        let (client, name) = (client.clone(), format!("Live Co {n}"));
        async move { client.rename_tenant(&name).await.unwrap() }
    };
    let event = events
        .act_until("event after the restart", |_| rename(&client, &mut n), |_, _| true)
        .await
        .expect("an event, not an error");
    assert_eq!((event.event_type.as_str(), event.tenant_id.as_str()), ("TenantUpdated", tenant.as_str()));
    drop(events);

    // A quiet stream outlives its tokens: the server ends it as each token expires, and it is opened
    // again with the next — never counted as failing, even when giving up after two seconds of failure.
    let patient = client
        .clone()
        .with_reconnect(cp_sdk::live::Reconnect { give_up_after: Duration::from_secs(2), ..Default::default() });
    let mut quiet = Live::spawn(patient.tenant_events(None, vec!["TenantUpdated".into()]));
    let fetched = client.tokens_fetched();
    test_support::eventually("two token expiries on the quiet stream", Duration::from_secs(3 * SHORT_TTL), || async {
        client.tokens_fetched() >= fetched + 2
    })
    .await;
    let event = quiet
        .act_until("event on the quiet stream", |_| rename(&client, &mut n), |_, _| true)
        .await
        .expect("the quiet stream is still open, not given up");
    assert_eq!(event.event_type, "TenantUpdated");
    drop(quiet);
    hive.stop().await;
    stack.stop().await;
}
