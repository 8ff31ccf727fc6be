//! Cedar evaluation in process, and decision appends.
//!
//!     cargo bench -p governance --bench policy_eval     (PostgreSQL as for the tests)
//!
//! **Evaluation.** One tenant's set of 1,000 published policies, generated from a seeded RNG (BENCH_SEED,
//! default 1), written the way a tenant's policies are: 85 % permits, 5 % permits annotated
//! `@effect("requires_approval")`, 10 % forbids (exceptions: always for a role and under a condition).
//! Principal scope: `in Role::"role-NN"` (40 roles) for 75 %, unconstrained 10 %, one principal 10 %,
//! `is Agent` 5 %. Action: one of the seven (80 %), two (10 %), any (10 %). Resource: `in
//! Project::"proj-NN"` (50 projects) 35 %, `is <Type>` 25 %, `is <Type> in Project` 10 %, unconstrained
//! 30 %. Half carry a condition on the context. 20,000 requests: a principal with 1–3 roles, an action, a
//! resource of a type the action applies to in one project, a context.
//!
//! Measured on one thread, in the same run:
//!
//! - **the subgraph's path**: `cedar::prepare` (the request checked against the schema, its entities built)
//!   and `CompiledSet::evaluate` (the policies whose scope matches, picked through the index, evaluated by
//!   Cedar; reasons mapped to policy ids and effects);
//! - **evaluate alone**: `CompiledSet::evaluate` on prepared requests;
//! - **bare**: `cedar_policy::Authorizer::is_authorized` over the whole 1,000-policy `PolicySet` with the
//!   same prepared request and entities.
//!
//! Each call is timed for the percentiles; throughput is a separate untimed loop. Targets: p99 < 50 µs and
//! at least 50,000 evaluations/s on one core.
//!
//! **Decision appends.** Into a throwaway database (provisioned and migrated like the service's):
//! `decisions::decide` in a `Work` per decision — the decision row and its `PolicyDecided` outbox row, one
//! transaction each, as `evaluatePolicy` does — from 8 concurrent tasks, beside the bare baseline of one
//! plain `INSERT` of the same row per transaction from 8 tasks. Target: at least 5,000 appends/s.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cedar_policy::Authorizer;
use governance::decisions::{self, EvaluationRequest};
use governance::events::{EntityRef, ParentRef};
use governance::policies::cedar::{self, CompiledSet, Prepared, Published, ACTIONS};
use governance::policies::Effect;
use kernel::db::Db;
use kernel::envelope::EventMeta;
use kernel::{TenantId, Work};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

const POLICIES: usize = 1_000;
const REQUESTS: usize = 20_000;
const ROLES: usize = 40;
const PROJECTS: usize = 50;

/// The resource types each action applies to (the schema's `appliesTo`).
fn resource_types(action: &str) -> &'static [&'static str] {
    match action {
        "read" | "write" => &["Project", "Environment", "Module", "Workflow", "Artifact"],
        "deploy" => &["Environment", "Artifact"],
        "approve" => &["Environment", "Workflow", "Artifact"],
        "run" => &["Workflow"],
        "publish" => &["Artifact", "Module"],
        "use" => &["Model"],
        _ => unreachable!(),
    }
}

fn policy(rng: &mut StdRng, i: usize) -> Published {
    let roll = rng.gen_range(0..100);
    let (effect, keyword) = match roll {
        0..85 => (Effect::Allow, "permit"),
        85..95 => (Effect::Deny, "forbid"),
        _ => (Effect::RequiresApproval, "permit"),
    };
    // Forbids are exceptions: always for a role and under a condition.
    let principal = match (effect, rng.gen_range(0..20)) {
        (Effect::Deny, _) | (_, 2..17) => format!("principal in Role::\"role-{}\"", rng.gen_range(0..ROLES)),
        (_, 0..2) => "principal".to_owned(),
        (_, 17..19) => format!("principal == Principal::\"user-{}\"", rng.gen_range(0..10_000)),
        _ => "principal is Agent".to_owned(),
    };
    let action = match rng.gen_range(0..10) {
        0 => None,
        9 => Some(vec![ACTIONS[rng.gen_range(0..ACTIONS.len())], ACTIONS[rng.gen_range(0..ACTIONS.len())]]),
        _ => Some(vec![ACTIONS[rng.gen_range(0..ACTIONS.len())]]),
    };
    let action_scope = match &action {
        None => "action".to_owned(),
        Some(a) if a.len() == 1 => format!("action == Action::\"{}\"", a[0]),
        Some(a) => format!("action in [Action::\"{}\", Action::\"{}\"]", a[0], a[1]),
    };
    let single = action.as_ref().filter(|a| a.len() == 1).map(|a| a[0]);
    let project = rng.gen_range(0..PROJECTS);
    let resource = match (single, rng.gen_range(0..20)) {
        (Some("use"), _) => "resource is Model".to_owned(),
        (_, 0..7) => format!("resource in Project::\"proj-{project}\""),
        (Some(a), 7..12) => {
            let types = resource_types(a);
            format!("resource is {}", types[rng.gen_range(0..types.len())])
        }
        (Some(a), 12..14) => {
            let types = resource_types(a);
            format!("resource is {} in Project::\"proj-{project}\"", types[rng.gen_range(0..types.len())])
        }
        _ => "resource".to_owned(),
    };
    let condition = match (effect, rng.gen_range(0..6)) {
        (Effect::Deny, 0..3) | (_, 0) => {
            format!(" when {{ context has changeSize && context.changeSize > {} }}", rng.gen_range(500..2000))
        }
        (Effect::Deny, _) | (_, 1) => " unless { context has mfa && context.mfa }".to_owned(),
        (_, 2) => format!(" unless {{ context has hour && context.hour > {} }}", rng.gen_range(18..23)),
        _ => String::new(),
    };
    Published {
        policy_id: Uuid::now_v7(),
        name: format!("policy-{i}"),
        version: 1,
        effect,
        cedar: format!("{keyword}({principal}, {action_scope}, {resource}){condition};"),
        set_change: i as i64 + 1,
    }
}

/// A generated request: principal, action, resource, context.
type Raw = (EntityRef, String, EntityRef, Value);

fn request(rng: &mut StdRng) -> Raw {
    let roles = rng.gen_range(1..4);
    let principal = EntityRef {
        entity_type: "Principal".into(),
        id: format!("user-{}", rng.gen_range(0..10_000)),
        parents: (0..roles)
            .map(|_| ParentRef { entity_type: "Role".into(), id: format!("role-{}", rng.gen_range(0..ROLES)) })
            .collect(),
    };
    let action = ACTIONS[rng.gen_range(0..ACTIONS.len())];
    let types = resource_types(action);
    let ty = types[rng.gen_range(0..types.len())];
    let resource = EntityRef {
        entity_type: ty.into(),
        id: format!("{}-{}", ty.to_lowercase(), rng.gen_range(0..100_000)),
        parents: if ty == "Project" || ty == "Model" {
            vec![]
        } else {
            vec![ParentRef { entity_type: "Project".into(), id: format!("proj-{}", rng.gen_range(0..PROJECTS)) }]
        },
    };
    let context =
        json!({ "changeSize": rng.gen_range(0..2000), "mfa": rng.gen_bool(0.7), "hour": rng.gen_range(0..24) });
    (principal, action.to_owned(), resource, context)
}

struct Stats(Vec<Duration>);

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e6
    }
    fn mean(&self) -> f64 {
        self.0.iter().map(Duration::as_secs_f64).sum::<f64>() / self.0.len() as f64 * 1e6
    }
}

fn row(name: &str, s: &Stats, per_sec: f64) {
    println!(
        "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {per_sec:.0} |",
        s.pct(0.5),
        s.pct(0.99),
        s.pct(0.999),
        s.mean()
    );
}

fn evaluation(seed: u64) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let policies: Vec<Published> = (0..POLICIES).map(|i| policy(&mut rng, i)).collect();
    let started = Instant::now();
    let set = CompiledSet::compile(&policies, POLICIES as i64).expect("the generated policies compile");
    println!("compiled {} policies in {:.1} ms", set.policies, started.elapsed().as_secs_f64() * 1e3);
    let raw: Vec<_> = (0..REQUESTS).map(|_| request(&mut rng)).collect();
    let prepare = |(p, a, r, c): &Raw| -> Prepared {
        cedar::prepare(p, &Value::Null, a, r, &Value::Null, c).expect("generated requests fit the schema")
    };
    let prepared: Vec<Prepared> = raw.iter().map(prepare).collect();
    let authorizer = Authorizer::new();

    // Warm up, and check the two paths agree on every request.
    let mut effects = [0usize; 3];
    for p in &prepared {
        let ours = set.evaluate(p);
        let bare = authorizer.is_authorized(&p.request, set.policy_set(), &p.entities);
        assert_eq!(ours.effect != Effect::Deny, bare.decision() == cedar_policy::Decision::Allow);
        effects[ours.effect as usize] += 1;
    }
    println!("decisions: {} allow, {} deny, {} requires approval", effects[0], effects[1], effects[2]);

    let mut path = Vec::with_capacity(REQUESTS);
    let mut eval = Vec::with_capacity(REQUESTS);
    let mut bare = Vec::with_capacity(REQUESTS);
    for (r, p) in raw.iter().zip(&prepared) {
        let t = Instant::now();
        let q = prepare(r);
        black_box(set.evaluate(&q));
        path.push(t.elapsed());
        let t = Instant::now();
        black_box(set.evaluate(p));
        eval.push(t.elapsed());
        let t = Instant::now();
        black_box(authorizer.is_authorized(&p.request, set.policy_set(), &p.entities));
        bare.push(t.elapsed());
    }
    let throughput = |f: &dyn Fn(usize)| {
        let t = Instant::now();
        for i in 0..REQUESTS {
            f(i);
        }
        REQUESTS as f64 / t.elapsed().as_secs_f64()
    };
    let path_rate = throughput(&|i| {
        black_box(set.evaluate(&prepare(&raw[i])));
    });
    let eval_rate = throughput(&|i| {
        black_box(set.evaluate(&prepared[i]));
    });
    let bare_rate = throughput(&|i| {
        let p = &prepared[i];
        black_box(authorizer.is_authorized(&p.request, set.policy_set(), &p.entities));
    });
    let path = Stats(path);
    prepare_breakdown(&raw);
    println!("\n### Evaluation over {POLICIES} policies, {REQUESTS} requests, one thread\n");
    println!("| path | p50 µs | p99 µs | p99.9 µs | mean µs | evaluations/s |");
    println!("|---|---|---|---|---|---|");
    row("subgraph path: prepare + evaluate (scope index)", &path, path_rate);
    row("evaluate alone (scope index)", &Stats(eval), eval_rate);
    row("bare `Authorizer::is_authorized`, whole set", &Stats(bare), bare_rate);
    (path.pct(0.99), path_rate)
}

/// Where `cedar::prepare`'s time goes: Cedar's schema-checked parsers, step by step, with and without the
/// schema (mean µs over the requests).
fn prepare_breakdown(raw: &[Raw]) {
    use cedar_policy::{Context, Entities, EntityUid, Request};
    use std::str::FromStr;
    let schema = cedar::schema();
    let mean = |f: &dyn Fn(&Raw)| {
        let t = Instant::now();
        for r in raw {
            f(r);
        }
        t.elapsed().as_secs_f64() * 1e6 / raw.len() as f64
    };
    let uid =
        |e: &EntityRef| EntityUid::from_str(&format!("{}::{}", e.entity_type, Value::String(e.id.clone()))).unwrap();
    let entities = |(p, _, r, _): &Raw| {
        let mut v = Vec::new();
        for e in [p, r] {
            for q in &e.parents {
                v.push(json!({ "uid": { "type": q.entity_type, "id": q.id }, "attrs": {}, "parents": [] }));
            }
            let parents: Vec<Value> = e.parents.iter().map(|q| json!({ "type": q.entity_type, "id": q.id })).collect();
            v.push(json!({ "uid": { "type": e.entity_type, "id": e.id }, "attrs": {}, "parents": parents }));
        }
        Value::Array(v)
    };
    let context = mean(&|(_, a, _, c)| {
        let a = EntityUid::from_str(&format!("Action::\"{a}\"")).unwrap();
        black_box(Context::from_json_value(c.clone(), Some((schema, &a))).unwrap());
    });
    let context_bare = mean(&|(_, _, _, c)| {
        black_box(Context::from_json_value(c.clone(), None).unwrap());
    });
    let request = mean(&|(p, a, r, _)| {
        let a = EntityUid::from_str(&format!("Action::\"{a}\"")).unwrap();
        black_box(Request::new(uid(p), a, uid(r), Context::empty(), Some(schema)).unwrap());
    });
    let request_bare = mean(&|(p, a, r, _)| {
        let a = EntityUid::from_str(&format!("Action::\"{a}\"")).unwrap();
        black_box(Request::new(uid(p), a, uid(r), Context::empty(), None).unwrap());
    });
    let ents = mean(&|r| {
        black_box(Entities::from_json_value(entities(r), Some(schema)).unwrap());
    });
    let ents_bare = mean(&|r| {
        black_box(Entities::from_json_value(entities(r), None).unwrap());
    });
    println!("\nprepare, mean µs with the schema / without: context {context:.1} / {context_bare:.1}, request {request:.1} / {request_bare:.1}, entities {ents:.1} / {ents_bare:.1}");
}

async fn appends(seed: u64) -> (f64, f64) {
    let id = format!("bench{}", Uuid::new_v4().simple().to_string().get(..8).unwrap_or("x"));
    let db = test_support::TestDb::create("governance", &id, &governance::MIGRATIONS).await;
    let pool = kernel::db::connect(&db.app_url.clone().into(), 16).await.expect("pool");
    let kdb = Db::new(pool.clone());
    let tenant = TenantId::parse("bench").unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let set = Arc::new(CompiledSet::compile(&(0..100).map(|i| policy(&mut rng, i)).collect::<Vec<_>>(), 100).unwrap());
    let (p, a, r, c) = request(&mut rng);
    let req = Arc::new(EvaluationRequest {
        principal: p,
        principal_attrs: Value::Null,
        action: a,
        resource: r,
        resource_attrs: Value::Null,
        context: c,
    });
    const TASKS: usize = 8;
    const PER_TASK: usize = 1_500;

    let run_path = || {
        let (kdb, tenant, set, req) = (kdb.clone(), tenant.clone(), set.clone(), req.clone());
        async move {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..TASKS {
                let (kdb, tenant, set, req) = (kdb.clone(), tenant.clone(), set.clone(), req.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..PER_TASK {
                        let meta =
                            EventMeta { trace_id: "bench".into(), correlation_id: "bench".into(), causation_id: None };
                        let mut work = Work::tenant(&kdb, &tenant, meta).await.unwrap();
                        decisions::decide(&mut work, &tenant, &set, &req).await.unwrap();
                        work.commit().await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            (TASKS * PER_TASK) as f64 / started.elapsed().as_secs_f64()
        }
    };
    let run_bare = || {
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..TASKS {
                let pool = pool.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..PER_TASK {
                        let mut tx = pool.begin().await.unwrap();
                        sqlx::query("SELECT set_config('app.tenant_id', 'bench', true)").execute(&mut *tx).await.unwrap();
                        sqlx::query(
                            "INSERT INTO decisions (tenant_id, decision_id, principal, action, resource, context,
                                policy_set_version, policy_set_hash, determining_policies, effect, trace_id, correlation_id)
                             VALUES ('bench', $1, 'Principal::\"u\"', 'deploy', 'Environment::\"e\"', '{}', 1, 'h', '{}', 'Deny', 't', 'c')",
                        )
                        .bind(Uuid::now_v7())
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                        tx.commit().await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            (TASKS * PER_TASK) as f64 / started.elapsed().as_secs_f64()
        }
    };
    run_bare().await; // warm up
    let mut path_rates = Vec::new();
    let mut bare_rates = Vec::new();
    for _ in 0..3 {
        path_rates.push(run_path().await);
        bare_rates.push(run_bare().await);
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!("\n### Decision appends, {TASKS} tasks × {PER_TASK}, best of 3 rounds\n");
    println!("| path | appends/s (rounds) |");
    println!("|---|---|");
    println!(
        "| `decisions::decide` in a `Work` (decision + outbox row, one transaction each) | {:.0} ({:?}) |",
        best(&path_rates),
        path_rates.iter().map(|r| *r as u64).collect::<Vec<_>>()
    );
    println!(
        "| bare: one plain INSERT per transaction | {:.0} ({:?}) |",
        best(&bare_rates),
        bare_rates.iter().map(|r| *r as u64).collect::<Vec<_>>()
    );
    pool.close().await;
    drop(db);
    (best(&path_rates), best(&bare_rates))
}

#[tokio::main]
async fn main() {
    let seed: u64 = std::env::var("BENCH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let (p99, rate) = tokio::task::block_in_place(|| evaluation(seed));
    let (appends, _) = appends(seed).await;
    println!("\ntargets:");
    let verdict = |ok: bool, what: String| if ok { format!("met ({what})") } else { format!("MISSED ({what})") };
    println!("  evaluation p99 < 50 µs: {}", verdict(p99 < 50.0, format!("{p99:.1} µs")));
    println!("  ≥ 50,000 evaluations/s on one core: {}", verdict(rate >= 50_000.0, format!("{rate:.0}/s")));
    println!("  ≥ 5,000 decision appends/s: {}", verdict(appends >= 5_000.0, format!("{appends:.0}/s")));
}
