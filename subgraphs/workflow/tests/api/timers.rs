//! The kernel's durable timers on workflow's database: fired once at their deadline on the clock given
//! (never before), with the handler's event in the same transaction; a failed or interrupted firing keeps
//! the timer for the next pass; concurrent firers (replicas) fire each timer exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use kernel::timers::{self, OnTimer, Timer};
use kernel::{TenantId, Work};
use serde_json::json;
use workflow::events::TimerFired;
use workflow::history::{self, Stream};
use workflow::ids::InstanceId;

use crate::helpers::{app, new_stream, recorded, tenant, work, App};

/// Appends `TimerFired` to the instance's stream; fails while `failing`; counts what it fired.
#[derive(Default)]
struct Appends {
    failing: Mutex<bool>,
    fired: Mutex<HashMap<(String, String), usize>>,
}

#[async_trait::async_trait]
impl OnTimer for Appends {
    async fn fire(&self, work: &mut Work, timer: &Timer) -> kernel::Result<()> {
        if *self.failing.lock().unwrap() {
            return Err(kernel::Error::unavailable("not now"));
        }
        let instance = InstanceId::parse("subject", &timer.subject)?;
        let version = history::store::version(work, &timer.tenant, instance).await?.unwrap();
        let fired =
            TimerFired { instance_id: instance, step_id: timer.name.clone(), purpose: "wait".into(), attempt: 1 };
        Stream::at(instance, version).append(work, &timer.tenant, &fired).await?;
        *self.fired.lock().unwrap().entry((timer.subject.clone(), timer.name.clone())).or_default() += 1;
        Ok(())
    }
}

async fn stream_types(app: &App, t: &TenantId, id: InstanceId) -> Vec<String> {
    recorded(app, t, id).await.into_iter().map(|e| e.event_type).collect()
}

#[tokio::test]
async fn a_timer_fires_once_at_its_deadline_with_its_event_and_a_failed_firing_is_retried() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let id = new_stream(&app, &t).await;
    let now = Utc::now();
    let deadline = now + Duration::minutes(10);
    let mut w = work(&app, &t).await;
    timers::set(&mut w, &t, &id.to_string(), "pause", deadline, &json!({ "step": "pause" })).await.unwrap();
    // Set twice: one timer.
    timers::set(&mut w, &t, &id.to_string(), "pause", deadline, &json!({ "step": "pause" })).await.unwrap();
    w.commit().await.unwrap();
    let handler = Appends::default();
    let db = &app.state.kernel.db;

    // Before its deadline (a second early) nothing fires.
    let early = timers::fire_due(db, deadline - Duration::seconds(1), 100, &handler).await.unwrap();
    assert_eq!(early, timers::Fired::default());
    // At its deadline, with a failing handler: kept, and nothing of the handler's written.
    *handler.failing.lock().unwrap() = true;
    let failed = timers::fire_due(db, deadline, 100, &handler).await.unwrap();
    assert_eq!((failed.fired, failed.failed), (0, 1));
    assert!(stream_types(&app, &t, id).await.is_empty());
    // It backs off: on the same clock the next pass leaves it alone (it neither spins nor holds back the
    // timers after it); two seconds later it fires — its event and its removal together, once.
    *handler.failing.lock().unwrap() = false;
    assert_eq!(timers::fire_due(db, deadline, 100, &handler).await.unwrap(), timers::Fired::default());
    let fired = timers::fire_due(db, deadline + Duration::seconds(2), 100, &handler).await.unwrap();
    assert_eq!((fired.fired, fired.failed), (1, 0));
    assert_eq!(stream_types(&app, &t, id).await, vec!["TimerFired"]);
    let again = timers::fire_due(db, deadline + Duration::hours(1), 100, &handler).await.unwrap();
    assert_eq!(again.fired, 0);
    let mut w = work(&app, &t).await;
    assert!(timers::pending(&mut w, &t, &id.to_string()).await.unwrap().is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn a_timer_whose_firing_was_interrupted_fires_at_the_next_pass_and_cancelled_ones_never() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let id = new_stream(&app, &t).await;
    let deadline = Utc::now() - Duration::seconds(5);
    let mut w = work(&app, &t).await;
    timers::set(&mut w, &t, &id.to_string(), "wait:a", deadline, &json!({})).await.unwrap();
    timers::set(&mut w, &t, &id.to_string(), "timeout:b", deadline, &json!({})).await.unwrap();
    w.commit().await.unwrap();
    // A firer that claims the timer and dies before it commits (its transaction dropped, as a crash
    // drops the connection): the timer is still there, unlocked.
    {
        let mut tx = kernel::db::system_tx(app.state.kernel.db.shared(), "timers").await.unwrap();
        let claimed: Option<(String,)> =
            sqlx::query_as("SELECT name FROM timers WHERE name = 'wait:a' FOR UPDATE SKIP LOCKED")
                .fetch_optional(&mut *tx)
                .await
                .unwrap();
        assert!(claimed.is_some());
        sqlx::query("DELETE FROM timers WHERE name = 'wait:a'").execute(&mut *tx).await.unwrap();
        // Ended as the server ends a dead connection's transaction; awaited, since a dropped sqlx
        // transaction rolls back only when its connection is next used, holding the row lock till then.
        tx.rollback().await.unwrap();
    }
    let mut w = work(&app, &t).await;
    assert_eq!(timers::cancel(&mut w, &t, &id.to_string(), Some("timeout:b")).await.unwrap(), 1);
    w.commit().await.unwrap();
    let handler = Appends::default();
    let fired = timers::fire_due(&app.state.kernel.db, Utc::now(), 100, &handler).await.unwrap();
    assert_eq!(fired.fired, 1);
    assert_eq!(handler.fired.lock().unwrap().get(&(id.to_string(), "wait:a".into())), Some(&1));
    assert_eq!(stream_types(&app, &t, id).await, vec!["TimerFired"]);
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_firers_fire_every_timer_exactly_once_under_its_own_tenant() {
    let app = app().await;
    let tenants: Vec<TenantId> = ["alpha", "beta"].iter().map(|n| TenantId::parse(&tenant(&app, n)).unwrap()).collect();
    let now = Utc::now();
    let mut expected = Vec::new();
    for t in &tenants {
        for i in 0..60 {
            let id = new_stream(&app, t).await;
            let mut w = work(&app, t).await;
            timers::set(&mut w, t, &id.to_string(), "pause", now - Duration::milliseconds(i), &json!({}))
                .await
                .unwrap();
            w.commit().await.unwrap();
            expected.push((t.clone(), id));
        }
    }
    // One not yet due stays.
    let later = new_stream(&app, &tenants[0]).await;
    let mut w = work(&app, &tenants[0]).await;
    timers::set(&mut w, &tenants[0], &later.to_string(), "pause", now + Duration::hours(1), &json!({})).await.unwrap();
    w.commit().await.unwrap();

    let handler = Arc::new(Appends::default());
    let firers: Vec<_> = (0..4)
        .map(|_| {
            let (db, handler) = (app.state.kernel.db.clone(), handler.clone());
            tokio::spawn(async move { timers::fire_due(&db, now, 1000, handler.as_ref()).await.unwrap() })
        })
        .collect();
    let mut total = 0;
    for f in firers {
        let done = f.await.unwrap();
        assert_eq!(done.failed, 0);
        total += done.fired;
    }
    assert_eq!(total, expected.len(), "every due timer fired once, across the firers");
    let fired = handler.fired.lock().unwrap().clone();
    assert!(fired.values().all(|n| *n == 1), "{fired:?}");
    for (t, id) in &expected {
        assert_eq!(stream_types(&app, t, *id).await, vec!["TimerFired"], "{t} {id}");
    }
    let mut w = work(&app, &tenants[0]).await;
    assert_eq!(timers::pending(&mut w, &tenants[0], &later.to_string()).await.unwrap().len(), 1);
    app.cleanup().await;
}

/// Fails the timers named `fail`, after writing something (which the failure must undo); fires the others.
struct Partly;

#[async_trait::async_trait]
impl OnTimer for Partly {
    async fn fire(&self, work: &mut Work, timer: &Timer) -> kernel::Result<()> {
        let instance = InstanceId::parse("subject", &timer.subject)?;
        let version = history::store::version(work, &timer.tenant, instance).await?.unwrap();
        let fired =
            TimerFired { instance_id: instance, step_id: timer.name.clone(), purpose: "wait".into(), attempt: 1 };
        Stream::at(instance, version).append(work, &timer.tenant, &fired).await?;
        if timer.name == "fail" {
            return Err(kernel::Error::unavailable("not now"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn in_one_batch_a_failing_timer_rolls_back_alone_and_waits_out_its_backoff() {
    let app = app().await;
    let (a, b) = (TenantId::parse(&tenant(&app, "alpha")).unwrap(), TenantId::parse(&tenant(&app, "beta")).unwrap());
    let (ok, bad) = (new_stream(&app, &a).await, new_stream(&app, &b).await);
    let now = Utc::now();
    // The one that succeeds is due first, so the failing one comes after it in the same batch, under
    // another tenant.
    for (t, id, name, at) in [(&a, ok, "ok", now - Duration::seconds(2)), (&b, bad, "fail", now - Duration::seconds(1))]
    {
        let mut w = work(&app, t).await;
        timers::set(&mut w, t, &id.to_string(), name, at, &json!({})).await.unwrap();
        w.commit().await.unwrap();
    }
    let db = &app.state.kernel.db;
    let done = timers::fire_due(db, now, 100, &Partly).await.unwrap();
    assert_eq!((done.fired, done.failed), (1, 1));
    assert_eq!(recorded(&app, &a, ok).await.len(), 1, "the first fired");
    assert!(recorded(&app, &b, bad).await.is_empty(), "the failing one's append was rolled back");
    let (attempts, not_before): (i32, Option<chrono::DateTime<Utc>>) =
        sqlx::query_as("SELECT attempts, not_before FROM timers WHERE name = 'fail'")
            .fetch_one(&app.admin_pool().await)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "its failure was recorded as the firer, whatever tenant came before");
    assert!(not_before.is_some_and(|n| n > now));
    let again = timers::fire_due(db, now, 100, &Partly).await.unwrap();
    assert_eq!((again.fired, again.failed), (0, 0), "not claimed again before its backoff");
    app.cleanup().await;
}
