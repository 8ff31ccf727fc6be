//! The kernel's fenced leases (Redis with this test's own namespace, tokens from workflow's PostgreSQL): one
//! holder at a time, tokens that only grow, a stale token refused with nothing written, and Redis losing the
//! leases recovered with the old holder fenced off.

use std::time::Duration;

use kernel::leases::{self, Lease};
use kernel::{Code, TenantId};
use redis::AsyncCommands;
use workflow::events::WorkflowStepReady;
use workflow::history::{self, Stream};
use workflow::ids::InstanceId;

use crate::helpers::{app, new_stream, recorded, tenant, work, App};

const AGENT: &str = "pool:writers/agent-1";
const TTL: Duration = Duration::from_secs(30);

/// Appends an event to `id`'s stream as `lease`'s holder: checked against the lease's token in the same
/// transaction; the version appended, or the refusal.
async fn report(app: &App, t: &TenantId, id: InstanceId, lease: &Lease) -> kernel::Result<i64> {
    let mut w = work(app, t).await;
    leases::check(&mut w, t, &lease.resource, lease.token).await?;
    let version = history::store::version(&mut w, t, id).await?.unwrap();
    let ready =
        WorkflowStepReady { instance_id: id, step_id: lease.holder.clone(), step_type: "AgentTask".into(), attempt: 1 };
    let r = Stream::at(id, version).append(&mut w, t, &ready).await?;
    w.commit().await?;
    Ok(r.version)
}

async fn events(app: &App, t: &TenantId, id: InstanceId) -> usize {
    recorded(app, t, id).await.len()
}

#[tokio::test]
async fn one_holder_at_a_time_and_a_stale_token_is_refused_with_nothing_written() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let (db, cache) = (&app.state.kernel.db, &app.state.kernel.cache);
    let id = new_stream(&app, &t).await;

    let first = leases::acquire(db, cache, &t, AGENT, "task-a", TTL).await.unwrap().expect("free");
    assert_eq!(first.token, 1);
    assert!(leases::acquire(db, cache, &t, AGENT, "task-b", TTL).await.unwrap().is_none(), "held by task-a");
    assert!(leases::renew(cache, &first).await.unwrap());
    assert_eq!(report(&app, &t, id, &first).await.unwrap(), 1);

    leases::release(cache, &first).await.unwrap();
    let second = leases::acquire(db, cache, &t, AGENT, "task-b", TTL).await.unwrap().expect("released");
    assert!(second.token > first.token, "{} after {}", second.token, first.token);
    // The first holder, late: its renewal fails and its report is refused, nothing written.
    assert!(!leases::renew(cache, &first).await.unwrap());
    let err = report(&app, &t, id, &first).await.unwrap_err();
    assert_eq!(err.code(), Code::Conflict, "{err:?}");
    assert!(err.message().contains("superseded"), "{}", err.message());
    assert_eq!(events(&app, &t, id).await, 1, "the stale report wrote nothing");
    assert_eq!(report(&app, &t, id, &second).await.unwrap(), 2);

    // Another tenant's resource of the same name is another lease.
    let other = TenantId::parse(&tenant(&app, "other")).unwrap();
    let theirs = leases::acquire(db, cache, &other, AGENT, "task-z", TTL).await.unwrap().expect("their own");
    assert_eq!(theirs.token, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn when_redis_loses_the_leases_they_are_reissued_with_higher_tokens_and_old_holders_are_fenced() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let (db, cache) = (&app.state.kernel.db, &app.state.kernel.cache);
    let id = new_stream(&app, &t).await;
    let old = leases::acquire(db, cache, &t, AGENT, "task-a", TTL).await.unwrap().expect("free");

    // Redis loses every lease of this test's namespace (a flush, a failover without replication).
    let mut conn = cache.connection();
    let keys: Vec<String> = conn.keys(cache.pattern(kernel::cache::kind::LEASE, "*")).await.unwrap();
    assert!(!keys.is_empty());
    let _: () = conn.del(keys).await.unwrap();

    let new = leases::acquire(db, cache, &t, AGENT, "task-b", TTL).await.unwrap().expect("lost, so free");
    assert!(new.token > old.token);
    assert!(!leases::renew(cache, &old).await.unwrap(), "the old holder learns it lost the lease");
    assert_eq!(report(&app, &t, id, &old).await.unwrap_err().code(), Code::Conflict);
    assert_eq!(report(&app, &t, id, &new).await.unwrap(), 1);
    assert_eq!(events(&app, &t, id).await, 1);
    app.cleanup().await;
}

#[tokio::test]
async fn an_expired_lease_can_be_taken_by_another_holder() {
    let app = app().await;
    let t = TenantId::parse(&tenant(&app, "acme")).unwrap();
    let (db, cache) = (&app.state.kernel.db, &app.state.kernel.cache);
    let short = leases::acquire(db, cache, &t, AGENT, "task-a", Duration::from_millis(300)).await.unwrap().unwrap();
    let taken = test_support::eventually_value("the lease expires", Duration::from_secs(10), || async {
        leases::acquire(db, cache, &t, AGENT, "task-b", TTL).await.unwrap()
    })
    .await;
    assert!(taken.token > short.token);
    app.cleanup().await;
}
