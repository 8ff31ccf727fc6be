//! Replay: the committed corpus of recorded histories (`tests/corpus/*.json`, each a definition's steps and
//! an instance's history as the API shows it) replayed through the current saga code — a change that
//! would make the saga decide differently from what it did fails here — and a history that parts from the
//! code reported where.
//!
//! A test that runs an instance to its end records its history into the corpus when
//! `WORKFLOW_RECORD_CORPUS=1` is set (`cargo nextest run -p workflow -E 'test(saga::)'`); commit the file.

use chrono::Utc;
use kernel::TenantId;
use serde_json::{json, Value};
use workflow::definitions::spec::Spec;
use workflow::history::Recorded;
use workflow::ids::InstanceId;
use workflow::replay::{replay, Step};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

/// A corpus entry: the steps the instance ran and its history.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub definition: Spec,
    pub history: Vec<Step>,
}

fn recorded(history: &[Step]) -> Vec<Recorded> {
    history
        .iter()
        .enumerate()
        .map(|(i, s)| Recorded {
            tenant_id: TenantId::parse("corpus").unwrap(),
            instance_id: InstanceId::from(uuid::Uuid::nil()),
            version: i as i64 + 1,
            position: i as i64 + 1,
            tx: 1,
            event_id: format!("e{i}"),
            event_type: s.event_type.clone(),
            data: s.data.clone(),
            recorded_at: Utc::now(),
        })
        .collect()
}

/// Writes `name`'s corpus entry when recording is asked for (`WORKFLOW_RECORD_CORPUS=1`).
pub fn record(name: &str, definition: &Value, history: &Value) {
    if std::env::var("WORKFLOW_RECORD_CORPUS").as_deref() != Ok("1") {
        return;
    }
    let history: Vec<Step> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Step { event_type: e["type"].as_str().unwrap().to_owned(), data: e["data"].clone() })
        .collect();
    let entry = Entry { definition: serde_json::from_value(definition.clone()).unwrap(), history };
    let path = format!("{CORPUS}/{name}.json");
    std::fs::write(&path, serde_json::to_string_pretty(&entry).unwrap() + "\n").unwrap();
    eprintln!("recorded {path}");
}

#[test]
fn every_recorded_history_replays_with_the_same_decisions() {
    let mut files: Vec<_> = std::fs::read_dir(CORPUS).unwrap().map(|f| f.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    assert!(!files.is_empty(), "the corpus is empty");
    for path in files {
        let entry: Entry = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        match replay(&entry.definition, &recorded(&entry.history)) {
            Ok(checked) => assert!(checked > 0, "{}: no decision checked", path.display()),
            Err(d) => panic!(
                "{}: the saga now decides differently from what it did, at version {}:\n  decided:  {}\n  recorded: {}",
                path.display(),
                d.version,
                json!(d.decided),
                json!(d.recorded)
            ),
        }
    }
}

#[test]
fn a_history_that_parts_from_the_code_is_reported_where() {
    let entry: Entry =
        serde_json::from_str(&std::fs::read_to_string(format!("{CORPUS}/full-path.json")).unwrap()).unwrap();
    let history = recorded(&entry.history);
    // Against another version of the definition: the publication step renamed.
    let mut renamed = entry.definition.clone();
    for s in &mut renamed.steps {
        if s.id == "publish" {
            s.id = "release".into();
        }
        if s.next.as_deref() == Some("publish") {
            s.next = Some("release".into());
        }
    }
    let d = *replay(&renamed, &history).unwrap_err();
    let at = entry.history.iter().position(|s| s.data["stepId"] == "publish").unwrap() as i64 + 1;
    assert_eq!(d.version, at);
    assert_eq!(d.decided.unwrap().data["stepId"], "release");
    assert_eq!(d.recorded.unwrap().data["stepId"], "publish");

    // A decision the code would not make (a completion nobody decided), and one the history lacks.
    let mut extra = history.clone();
    let mut bogus = extra[1].clone();
    bogus.event_type = "WorkflowCompleted".into();
    bogus.data = json!({ "instanceId": uuid::Uuid::nil() });
    extra.insert(1, bogus);
    for (i, e) in extra.iter_mut().enumerate() {
        e.version = i as i64 + 1;
    }
    assert_eq!(replay(&entry.definition, &extra).unwrap_err().version, 2);
    let cut = &history[..1];
    let d = *replay(&entry.definition, cut).unwrap_err();
    assert_eq!((d.version, d.decided.unwrap().event_type.as_str()), (2, "WorkflowStepReady"));
}

/// Replay through the API: a shadow stream kept beside the untouched source, a divergence against another
/// version, and retention after 90 days that honours legal hold.
#[tokio::test]
async fn an_instance_replays_into_a_shadow_stream_kept_ninety_days_unless_on_hold() {
    use crate::helpers::{self, app, member, tenant};
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    helpers::models_allowed(&app, &t).await;
    let publish =
        "mutation($input: PublishWorkflowDefinitionInput!) { publishWorkflowDefinition(input: $input) { version } }";
    let steps = |second: &str| json!([{ "id": "first", "type": "WAIT", "waitSeconds": 1, "next": second }, { "id": second, "type": "WAIT", "waitSeconds": 1 }]);
    app.ok(
        &token,
        publish,
        json!({ "input": { "key": "waits", "name": "w", "start": "first", "steps": steps("second") } }),
    )
    .await;
    let v = app
        .ok(&token, "mutation { startWorkflow(input: { definitionKey: \"waits\", version: 1 }) { id } }", json!({}))
        .await;
    let id = v["startWorkflow"]["id"].as_str().unwrap().to_owned();
    workflow::saga::timers::fire_due(&app.state.kernel, Utc::now() + chrono::Duration::seconds(5)).await.unwrap();
    workflow::saga::timers::fire_due(&app.state.kernel, Utc::now() + chrono::Duration::seconds(10)).await.unwrap();
    // Version 2 renames the second step.
    app.ok(
        &token,
        publish,
        json!({ "input": { "key": "waits", "name": "w", "start": "first", "steps": steps("later") } }),
    )
    .await;
    let admin = app.admin_pool().await;
    let source = || async {
        sqlx::query_scalar::<_, Value>("SELECT jsonb_agg(to_jsonb(e) ORDER BY version) FROM workflow_events e")
            .fetch_one(&admin)
            .await
            .unwrap()
    };
    let before = source().await;

    let replay = "mutation($i: ID!, $v: Int) { replayWorkflow(instanceId: $i, definitionVersion: $v) {
        id matches decisionsChecked divergedAt decided recorded events(first: 500) } }";
    let same = app.ok(&token, replay, json!({ "i": id })).await["replayWorkflow"].clone();
    assert_eq!(same["matches"], true, "{same}");
    let history = app.ok(&token, "query($i: ID!) { workflowInstance(id: $i) { version } }", json!({ "i": id })).await;
    let length = history["workflowInstance"]["version"].as_u64().unwrap() as usize;
    assert_eq!(same["events"].as_array().unwrap().len(), length, "the shadow stream mirrors the history");
    assert!(same["decisionsChecked"].as_i64().unwrap() > 0);

    let other = app.ok(&token, replay, json!({ "i": id, "v": 2 })).await["replayWorkflow"].clone();
    assert_eq!(other["matches"], false, "{other}");
    assert_eq!(other["decided"]["data"]["stepId"], "later");
    assert_eq!(other["recorded"]["data"]["stepId"], "second");
    let shadow = other["events"].as_array().unwrap();
    assert_eq!(shadow.last().unwrap()["data"]["stepId"], "later", "it stops at the divergence");
    assert_eq!(source().await, before, "the source stream is never touched");

    // Retention: runs older than 90 days go, but a tenant's on legal hold.
    sqlx::query("UPDATE replay_runs SET created_at = now() - interval '91 days'").execute(&admin).await.unwrap();
    sqlx::query("INSERT INTO legal_holds (tenant_id, on_hold) VALUES ($1, true)")
        .bind(&t)
        .execute(&admin)
        .await
        .unwrap();
    app.step("replay retention").await;
    let runs =
        || async { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM replay_runs").fetch_one(&admin).await.unwrap() };
    assert_eq!(runs().await, 2, "kept while the tenant is on hold");
    sqlx::query("UPDATE legal_holds SET on_hold = false").execute(&admin).await.unwrap();
    app.step("replay retention").await;
    assert_eq!(runs().await, 0);
    let shadows: i64 = sqlx::query_scalar("SELECT count(*) FROM replay_events").fetch_one(&admin).await.unwrap();
    assert_eq!(shadows, 0, "their shadow streams with them");
    assert_eq!(source().await, before);
    app.cleanup().await;
}
