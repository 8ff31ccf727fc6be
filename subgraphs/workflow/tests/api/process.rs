//! The process-state projection: states follow the events through the projector's own checkpoint, and
//! dropping and rebuilding the projection from the events gives every row back as it was.

use std::time::Duration;

use kernel::TenantId;
use serde_json::{json, Value};
use workflow::events::*;
use workflow::history::Stream;
use workflow::ids::{InstanceId, TaskId};

use crate::helpers::{definition, tenant, work, App};

/// Every process state, as JSON rows in key order.
async fn rows(app: &App) -> Vec<Value> {
    sqlx::query_scalar("SELECT to_jsonb(p) FROM process_state p ORDER BY tenant_id, instance_id")
        .fetch_all(&app.admin_pool().await)
        .await
        .unwrap()
}

/// Waits until the projection holds `n` instances, each at its stream's version.
async fn projected(app: &App, n: i64) -> Vec<Value> {
    let admin = app.admin_pool().await;
    test_support::eventually("the projection caught up", Duration::from_secs(20), || {
        let (admin, kernel) = (admin.clone(), app.state.kernel.clone());
        async move {
            workflow::process::projector::catch_up(&kernel).await.unwrap();
            sqlx::query_scalar::<_, bool>(
                "SELECT count(*) = $1 AND bool_and(p.version = s.version)
                   FROM workflow_streams s JOIN process_state p USING (tenant_id, instance_id)",
            )
            .bind(n)
            .fetch_one(&admin)
            .await
            .unwrap_or(false)
        }
    })
    .await;
    rows(app).await
}

type Make = Box<dyn Fn(InstanceId) -> Appendable>;

/// Starts an instance and appends `then`'s events after its start, in one transaction.
async fn instance(app: &App, t: &TenantId, then: Vec<Make>) -> InstanceId {
    let id = InstanceId::new_v7();
    let mut w = work(app, t).await;
    let mut stream = Stream::create(&mut w, t, id, &definition()).await.unwrap();
    let started = WorkflowInstanceStarted {
        instance_id: id,
        definition_key: "content-review".into(),
        definition_version: 1,
        platform_definition: true,
        project_id: None,
        input: json!({}),
        started_by: "test".into(),
        continued_from: None,
        start_step: None,
        completed: vec![],
        continue_as_new_after: None,
    };
    stream.append(&mut w, t, &started).await.unwrap();
    for make in then {
        match make(id) {
            Appendable::Ready(e) => stream.append(&mut w, t, &e).await.unwrap(),
            Appendable::Assigned(e) => stream.append(&mut w, t, &e).await.unwrap(),
            Appendable::Completed(e) => stream.append(&mut w, t, &e).await.unwrap(),
            Appendable::Approval(e) => stream.append(&mut w, t, &e).await.unwrap(),
            Appendable::Done(e) => stream.append(&mut w, t, &e).await.unwrap(),
        };
    }
    w.commit().await.unwrap();
    id
}

enum Appendable {
    Ready(WorkflowStepReady),
    Assigned(AgentTaskAssigned),
    Completed(AgentTaskCompleted),
    Approval(ApprovalRequested),
    Done(WorkflowCompleted),
}

fn ready(step: &'static str, kind: &'static str) -> Make {
    Box::new(move |id| {
        Appendable::Ready(WorkflowStepReady {
            instance_id: id,
            step_id: step.into(),
            step_type: kind.into(),
            attempt: 1,
        })
    })
}

fn assigned(step: &'static str) -> Make {
    Box::new(move |id| {
        Appendable::Assigned(AgentTaskAssigned {
            instance_id: id,
            task_id: TaskId::new_v7(),
            step_id: step.into(),
            attempt: 1,
            compensation: false,
            skill: "draft-content".into(),
            pool: "writers".into(),
            agent_id: "agent-1".into(),
            fencing_token: 1,
            model_policies: vec!["agents@1".into()],
        })
    })
}

fn completed(step: &'static str) -> Make {
    Box::new(move |id| {
        Appendable::Completed(AgentTaskCompleted {
            instance_id: id,
            task_id: TaskId::new_v7(),
            step_id: step.into(),
            compensation: false,
            outputs: vec![],
            provider: "openai".into(),
            model: "m".into(),
            tokens: 10,
            duration_ms: 5,
            agent_id: "agent-1".into(),
            skill: "draft-content".into(),
            project_id: None,
        })
    })
}

#[tokio::test]
async fn the_projection_follows_the_events_and_a_rebuild_gives_every_row_back() {
    let app = App::builder().manual_workers().start::<workflow::State>(&kernel::service::NoConfig {}).await;
    let (a, b) = (TenantId::parse(&tenant(&app, "alpha")).unwrap(), TenantId::parse(&tenant(&app, "beta")).unwrap());
    let assigning = instance(&app, &a, vec![ready("draft", "AgentTask")]).await;
    let working = instance(&app, &a, vec![ready("draft", "AgentTask"), assigned("draft")]).await;
    let gated = instance(
        &app,
        &b,
        vec![
            ready("draft", "AgentTask"),
            assigned("draft"),
            completed("draft"),
            ready("review", "Approval"),
            Box::new(|id| {
                Appendable::Approval(ApprovalRequested {
                    instance_id: id,
                    step_id: "review".into(),
                    attempt: 1,
                    approval_key: "k".into(),
                })
            }),
        ],
    )
    .await;
    let finished: Make = Box::new(|id| Appendable::Done(WorkflowCompleted { instance_id: id }));
    let done = instance(&app, &b, vec![ready("draft", "AgentTask"), completed("draft"), finished]).await;

    let before = projected(&app, 4).await;
    let status = |id: InstanceId| {
        before.iter().find(|r| r["instance_id"] == id.to_string()).map(|r| r["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status(assigning).as_deref(), Some("AssigningTask"));
    assert_eq!(status(working).as_deref(), Some("AwaitingAgent"));
    assert_eq!(status(gated).as_deref(), Some("AwaitingApproval"));
    assert_eq!(status(done).as_deref(), Some("Completed"));

    // The rebuild re-applies every event (the projector runs only here: workers are manual). An event
    // may wait behind a transaction in flight elsewhere on the server, so later passes finish the count.
    let events: i64 = sqlx::query_scalar("SELECT sum(version)::bigint FROM workflow_streams")
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap();
    let kernel = &app.state.kernel;
    let mut applied = workflow::process::projector::rebuild(kernel).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while (applied as i64) < events && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        applied += workflow::process::projector::catch_up(kernel).await.unwrap();
    }
    assert_eq!(applied as i64, events, "the rebuild applied every event once");
    let after = projected(&app, 4).await;
    assert_eq!(after, before, "a rebuild from the events gives every row back");
    // …and every hot copy, equal to its row.
    for (t, ids) in [(&a, vec![assigning, working]), (&b, vec![gated, done])] {
        let copies = workflow::process::hot::read(&kernel.cache, t, &ids).await;
        for (id, copy) in ids.iter().zip(copies) {
            let copy = copy.unwrap_or_else(|| panic!("no hot copy of {id}"));
            let row = after.iter().find(|r| r["instance_id"] == id.to_string()).unwrap();
            assert_eq!(
                (copy.version, copy.status.as_str()),
                (row["version"].as_i64().unwrap(), row["status"].as_str().unwrap())
            );
            assert_eq!(serde_json::to_value(&copy.steps).unwrap(), row["steps"]);
        }
    }
    assert!(kernel::metrics::render().contains(r#"cp_projection_lag_seconds{projector="process-state"}"#));
    app.cleanup().await;
}
