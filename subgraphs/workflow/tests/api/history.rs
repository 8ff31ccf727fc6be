//! The event store: optimistic concurrency under real concurrency (exactly one of two appends at a version
//! wins), a follower of the global order that misses nothing under concurrent, interleaved and aborted
//! appends (randomized), the history cap, and append-only events.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kernel::envelope::EventMeta;
use kernel::{Authorized, TenantId, Work};
use rand::Rng;
use workflow::events::WorkflowStepReady;
use workflow::history::{self, Checkpoint, Stream};
use workflow::ids::InstanceId;

use crate::helpers::{app, new_stream, recorded, tenant, work};

fn meta() -> EventMeta {
    EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: Some("test".into()) }
}

fn ready(instance: InstanceId, step: &str) -> WorkflowStepReady {
    WorkflowStepReady { instance_id: instance, step_id: step.into(), step_type: "AgentTask".into(), attempt: 1 }
}

#[tokio::test]
async fn of_two_appends_at_one_version_exactly_one_wins_and_the_other_names_both_versions() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let id = new_stream(&app, &t).await;

    // First, one interleaving made certain: the second append waits on the first's row lock (seen in
    // pg_stat_activity), and is refused once the first commits.
    let mut first = work(&app, &t).await;
    Stream::at(id, 0).append(&mut first, &t, &ready(id, "a")).await.unwrap();
    let second = tokio::spawn({
        let (db, t) = (app.state.kernel.db.clone(), t.clone());
        async move {
            let mut w = Work::tenant(&db, &Authorized::system(t.clone(), "test"), meta()).await.unwrap();
            let r = Stream::at(id, 0).append(&mut w, &t, &ready(id, "b")).await;
            if r.is_ok() {
                w.commit().await.unwrap();
            }
            r
        }
    });
    let admin = app.admin_pool().await;
    test_support::eventually("the second append waits on the first", Duration::from_secs(10), || {
        let admin = admin.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                                   AND query LIKE '%UPDATE workflow_streams%')",
            )
            .fetch_one(&admin)
            .await
            .unwrap()
        }
    })
    .await;
    first.commit().await.unwrap();
    let err = second.await.unwrap().expect_err("the second append is refused");
    assert_eq!(err.code(), kernel::Code::Conflict, "{err:?}");
    let details: BTreeMap<&str, serde_json::Value> = err.details().iter().cloned().collect();
    assert_eq!((details["expectedVersion"].as_i64(), details["actualVersion"].as_i64()), (Some(0), Some(1)));

    // Then many rounds of two appends raced at the same version, however they interleave.
    for round in 1..=20i64 {
        let race = |step: &'static str| {
            let (db, t) = (app.state.kernel.db.clone(), t.clone());
            tokio::spawn(async move {
                let mut w = Work::tenant(&db, &Authorized::system(t.clone(), "test"), meta()).await.unwrap();
                let r = Stream::at(id, round).append(&mut w, &t, &ready(id, step)).await;
                match r {
                    Ok(_) => w.commit().await.map(|_| ()),
                    Err(e) => Err(e),
                }
            })
        };
        let (a, b) = tokio::join!(race("x"), race("y"));
        let outcomes = [a.unwrap(), b.unwrap()];
        let won = outcomes.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {outcomes:?}");
        let lost = outcomes.into_iter().find_map(Result::err).unwrap();
        assert_eq!(lost.code(), kernel::Code::Conflict, "{lost:?}");
    }
    let events = recorded(&app, &t, id).await;
    let versions: Vec<i64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=21).collect::<Vec<_>>(), "one event per version, none lost or doubled");
    app.cleanup().await;
}

#[tokio::test]
async fn a_follower_of_the_global_order_misses_nothing_under_concurrent_appends() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let mut streams = Vec::new();
    for _ in 0..12 {
        streams.push(new_stream(&app, &t).await);
    }
    let streams = Arc::new(streams);
    let writers_done = tokio_util::sync::CancellationToken::new();

    // Eight writers, each 40 transactions of 1–3 events on a random stream, holding their transactions open
    // for random times so that they commit in another order than they took positions; one in eight rolls
    // back (its events must never be seen). Conflicts (two writers on one stream) are retried.
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (db, t, streams) = (app.state.kernel.db.clone(), t.clone(), streams.clone());
            tokio::spawn(async move {
                let mut committed = Vec::new();
                for _ in 0..40 {
                    let (id, n, hold, abort) = {
                        let mut rng = rand::thread_rng();
                        (
                            streams[rng.gen_range(0..streams.len())],
                            rng.gen_range(1..=3),
                            rng.gen_range(0..8u64),
                            rng.gen_ratio(1, 8),
                        )
                    };
                    loop {
                        let mut w = Work::tenant(&db, &Authorized::system(t.clone(), "test"), meta()).await.unwrap();
                        let version = history::store::version(&mut w, &t, id).await.unwrap().unwrap();
                        let mut stream = Stream::at(id, version);
                        let mut ids = Vec::new();
                        let mut conflict = false;
                        for i in 0..n {
                            match stream.append(&mut w, &t, &ready(id, &format!("s{i}"))).await {
                                Ok(r) => ids.push(r.event_id),
                                Err(e) if e.code() == kernel::Code::Conflict => {
                                    conflict = true;
                                    break;
                                }
                                Err(e) => panic!("{e:?}"),
                            }
                            tokio::time::sleep(Duration::from_millis(hold)).await;
                        }
                        if conflict {
                            continue;
                        }
                        if abort {
                            drop(w);
                        } else {
                            w.commit().await.unwrap();
                            committed.extend(ids);
                        }
                        break;
                    }
                }
                committed
            })
        })
        .collect();

    // The follower reads as the writers write, from its checkpoint, each batch strictly after it.
    let follower = tokio::spawn({
        let (db, done) = (app.state.kernel.db.clone(), writers_done.clone());
        async move {
            let mut at = Checkpoint::default();
            let mut seen: Vec<(Checkpoint, String)> = Vec::new();
            let mut idle_after_done = 0;
            loop {
                let mut tx = history::store::follower_tx(&db).await.unwrap();
                let batch = history::follow(&mut tx, at, 50).await.unwrap();
                tx.commit().await.unwrap();
                for e in &batch {
                    assert!(e.checkpoint() > at, "the global order moves forward: {:?} after {at:?}", e.checkpoint());
                    at = e.checkpoint();
                    seen.push((at, e.event_id.clone()));
                }
                if batch.is_empty() {
                    if done.is_cancelled() {
                        idle_after_done += 1;
                        // Caught up: nothing new for a while after the last writer finished.
                        if idle_after_done > 50 {
                            return seen;
                        }
                    }
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                } else {
                    idle_after_done = 0;
                }
            }
        }
    });
    let mut committed = HashSet::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    writers_done.cancel();
    let seen = follower.await.unwrap();
    let seen_ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    let unique: HashSet<&String> = seen_ids.iter().copied().collect();
    assert_eq!(unique.len(), seen_ids.len(), "no event read twice");
    let missed: Vec<_> = committed.iter().filter(|id| !unique.contains(id)).collect();
    assert!(missed.is_empty(), "the follower missed {} of {} committed events", missed.len(), committed.len());
    let phantom: Vec<_> = unique.iter().filter(|id| !committed.contains(**id)).collect();
    assert!(phantom.is_empty(), "rolled-back events were read: {phantom:?}");
    // How often an event committed after one with a higher position (a reader by position alone could
    // have skipped it).
    let overtaken = seen.windows(2).filter(|w| w[1].0.position < w[0].0.position).count();
    eprintln!("{} events followed; {overtaken} came after one with a higher position", seen.len());
    assert!(overtaken > 0, "the writers' interleaving made no event commit behind a higher position");
    app.cleanup().await;
}

#[tokio::test]
async fn a_full_history_is_refused_with_its_length_and_an_unknown_stream_is_not_found() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let id = new_stream(&app, &t).await;
    let admin = app.admin_pool().await;
    sqlx::query("UPDATE workflow_streams SET version = $1 WHERE instance_id = $2")
        .bind(history::HISTORY_LIMIT)
        .bind(id.as_uuid())
        .execute(&admin)
        .await
        .unwrap();
    let mut w = work(&app, &t).await;
    let err = Stream::at(id, history::HISTORY_LIMIT).append(&mut w, &t, &ready(id, "a")).await.unwrap_err();
    assert_eq!(err.code(), kernel::Code::QuotaExceeded, "{err:?}");
    assert!(err.message().contains("continue it as a new instance"), "{}", err.message());
    drop(w);
    let mut w = work(&app, &t).await;
    let ghost = InstanceId::new_v7();
    let err = Stream::at(ghost, 0).append(&mut w, &t, &ready(ghost, "a")).await.unwrap_err();
    assert_eq!(err.code(), kernel::Code::NotFound, "{err:?}");
    drop(w);
    // Another tenant's stream is not found either, whatever the version.
    let other = TenantId::parse(&tenant(&app, "other")).unwrap();
    let mut w = work(&app, &other).await;
    let err = Stream::at(id, history::HISTORY_LIMIT).append(&mut w, &other, &ready(id, "a")).await.unwrap_err();
    assert_eq!(err.code(), kernel::Code::NotFound, "{err:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn events_are_append_only_for_every_role_and_leave_through_the_outbox() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let id = new_stream(&app, &t).await;
    let mut w = work(&app, &t).await;
    let recorded = Stream::at(id, 0).append(&mut w, &t, &ready(id, "a")).await.unwrap();
    w.commit().await.unwrap();
    let admin = app.admin_pool().await;
    for sql in
        ["UPDATE workflow_events SET data = '{}'", "DELETE FROM workflow_events", "TRUNCATE workflow_events CASCADE"]
    {
        let err = sqlx::query(sql).execute(&admin).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let err = sqlx::query("DELETE FROM workflow_events").execute(app.pool()).await.expect_err("no DELETE grant");
    assert!(err.to_string().contains("permission denied"), "{err}");
    // The stored event is the outbox's: same id, type and payload.
    let (event_type, payload): (String, serde_json::Value) =
        sqlx::query_as("SELECT event_type, envelope -> 'payload' FROM outbox WHERE event_id = $1")
            .bind(&recorded.event_id)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!((event_type.as_str(), &payload), ("WorkflowStepReady", &recorded.data));
    app.cleanup().await;
}
