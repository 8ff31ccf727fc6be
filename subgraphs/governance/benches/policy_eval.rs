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
//!   and `CompiledSet::evaluate` (the policies whose scope matches, picked through the index; those with a
//!   condition evaluated by Cedar's evaluator; combined by Cedar's rule into the effect and deciding policies);
//! - **evaluate alone**: `CompiledSet::evaluate` on prepared requests;
//! - **bare**: `cedar_policy::Authorizer::is_authorized` over the whole 1,000-policy `PolicySet` with the
//!   same prepared request and entities.
//!
//! Each call is timed for the percentiles, one path at a time; throughput is a separate untimed loop. Targets:
//! p99 < 50 µs and at least 50,000 evaluations/s on one core, judged on evaluating a prepared request (the input
//! the bare baseline is given); the subgraph path's figures are printed beside them.
//!
//! **Decision appends.** Into a throwaway database (provisioned and migrated like the service's), for 10
//! tenants in turn, from 8 and from 64 concurrent callers: the API's path (`decisions::evaluate`, then the
//! group-commit writer, which appends many evaluations' decisions and `PolicyDecided` outbox rows per
//! transaction), the command path (`evaluate` + `record` in a `Work`: one transaction per decision), and
//! the bare baseline of one plain `INSERT` of a decision row per transaction. Target: at least 5,000
//! appends/s.

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
        policy_id: governance::ids::PolicyId::new_v7(),
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

/// The targets' figures: evaluation of a prepared request (what the bare baseline is given), and the whole
/// subgraph path.
struct Evaluated {
    p99: f64,
    rate: f64,
    path_p99: f64,
    path_rate: f64,
}

fn evaluation(seed: u64) -> Evaluated {
    let mut rng = StdRng::seed_from_u64(seed);
    let policies: Vec<Published> = (0..POLICIES).map(|i| policy(&mut rng, i)).collect();
    let started = Instant::now();
    let set = CompiledSet::compile(&policies, POLICIES as i64).expect("the generated policies compile");
    let whole = set.policy_set();
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
        let bare = authorizer.is_authorized(&p.request, &whole, &p.entities);
        assert_eq!(ours.effect != Effect::Deny, bare.decision() == cedar_policy::Decision::Allow);
        let mut reasons: Vec<String> = bare.diagnostics().reason().map(ToString::to_string).collect();
        reasons.sort();
        let mine: Vec<String> = ours.determining.iter().map(ToString::to_string).collect();
        assert_eq!(reasons, mine, "the same deciding policies");
        let mut errors: Vec<String> = bare.diagnostics().errors().map(|e| e.to_string()).collect();
        errors.sort();
        let mut mine = ours.errors.clone();
        mine.sort();
        assert_eq!(errors, mine, "the same errors");
        effects[ours.effect as usize] += 1;
    }
    println!("decisions: {} allow, {} deny, {} requires approval", effects[0], effects[1], effects[2]);
    let mut counts: Vec<(usize, usize)> = prepared.iter().map(|p| set.candidate_counts(p)).collect();
    let pick = |v: &mut Vec<usize>, q: f64| {
        v.sort_unstable();
        v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
    };
    let mut scoped: Vec<usize> = counts.iter().map(|c| c.0).collect();
    let mut conditional: Vec<usize> = counts.drain(..).map(|c| c.1).collect();
    println!(
        "policies whose scope matches a request: p50 {}, p99 {}, max {}; of them with a condition (given to Cedar): p50 {}, p99 {}, max {}",
        pick(&mut scoped, 0.5),
        pick(&mut scoped, 0.99),
        pick(&mut scoped, 1.0),
        pick(&mut conditional, 0.5),
        pick(&mut conditional, 0.99),
        pick(&mut conditional, 1.0)
    );

    // Each path timed call by call over every request, one path after the other (interleaving them would
    // have the whole-set baseline evict the others' working set from the caches between calls).
    let timed = |f: &dyn Fn(usize)| {
        Stats(
            (0..REQUESTS)
                .map(|i| {
                    let t = Instant::now();
                    f(i);
                    t.elapsed()
                })
                .collect(),
        )
    };
    let path = timed(&|i| {
        black_box(set.evaluate(&prepare(&raw[i])));
    });
    let eval = timed(&|i| {
        black_box(set.evaluate(&prepared[i]));
    });
    let bare = timed(&|i| {
        let p = &prepared[i];
        black_box(authorizer.is_authorized(&p.request, &whole, &p.entities));
    });
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
        black_box(authorizer.is_authorized(&p.request, &whole, &p.entities));
    });
    prepare_breakdown(&raw);
    println!("\n### Evaluation over {POLICIES} policies, {REQUESTS} requests, one thread\n");
    println!("| path | p50 µs | p99 µs | p99.9 µs | mean µs | evaluations/s |");
    println!("|---|---|---|---|---|---|");
    row("subgraph path: prepare + evaluate (scope index)", &path, path_rate);
    row("evaluate alone (scope index)", &eval, eval_rate);
    row("bare `Authorizer::is_authorized`, whole set", &bare, bare_rate);
    Evaluated { p99: eval.pct(0.99), rate: eval_rate, path_p99: path.pct(0.99), path_rate }
}

/// Where `cedar::prepare`'s time goes: its steps, cumulatively, with Cedar's schema check and without (mean µs
/// over the requests).
fn prepare_breakdown(raw: &[Raw]) {
    use cedar_policy::{Context, Entities, Entity, EntityUid, Request, RestrictedExpression};
    use std::collections::{HashMap, HashSet};
    use std::str::FromStr;
    let schema = cedar::schema();
    let mean = |f: &dyn Fn(&Raw)| {
        let t = Instant::now();
        for r in raw {
            f(r);
        }
        t.elapsed().as_secs_f64() * 1e6 / raw.len() as f64
    };
    let uid = |t: &str, id: &str| {
        EntityUid::from_type_name_and_id(
            cedar_policy::EntityTypeName::from_str(t).unwrap(),
            cedar_policy::EntityId::new(id),
        )
    };
    let pairs = |c: &Value| -> Vec<(String, RestrictedExpression)> {
        c.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let r = match v {
                    Value::Bool(b) => RestrictedExpression::new_bool(*b),
                    Value::Number(n) => RestrictedExpression::new_long(n.as_i64().unwrap()),
                    _ => unreachable!("the generator's contexts"),
                };
                (k.clone(), r)
            })
            .collect()
    };
    let entities = |(p, _, r, _): &Raw| -> Vec<Entity> {
        let mut out = Vec::new();
        for e in [p, r] {
            let mut parents = HashSet::new();
            for q in &e.parents {
                let u = uid(&q.entity_type, &q.id);
                out.push(Entity::new_no_attrs(u.clone(), HashSet::new()));
                parents.insert(u);
            }
            out.push(Entity::new(uid(&e.entity_type, &e.id), HashMap::new(), parents).unwrap());
        }
        out
    };
    let ids = mean(&|(p, a, r, _)| {
        black_box((uid(&p.entity_type, &p.id), uid("Action", a), uid(&r.entity_type, &r.id)));
    });
    let context = mean(&|(_, _, _, c)| {
        black_box(Context::from_pairs(pairs(c)).unwrap());
    });
    let request = |with: bool| {
        mean(&|(p, a, r, c)| {
            let ctx = Context::from_pairs(pairs(c)).unwrap();
            let s = with.then_some(schema);
            black_box(
                Request::new(uid(&p.entity_type, &p.id), uid("Action", a), uid(&r.entity_type, &r.id), ctx, s).unwrap(),
            );
        })
    };
    let build = mean(&|r| {
        black_box(entities(r));
    });
    let store = |with: bool| {
        mean(&|r| {
            black_box(Entities::from_entities(entities(r), with.then_some(schema)).unwrap());
        })
    };
    let whole = mean(&|(p, a, r, c)| {
        black_box(cedar::prepare(p, &Value::Null, a, r, &Value::Null, c).unwrap());
    });
    println!(
        "prepare, mean µs: whole {whole:.1}; its steps: ids {ids:.1}, context {context:.1}, ids + context + request {:.1} \
         (without the schema {:.1}), entities {build:.1}, entities + entity store {:.1} (without the schema {:.1})",
        request(true),
        request(false),
        store(true),
        store(false)
    );
}

/// Appends per second from `tasks` concurrent callers, each appending `per_task` times with `one`.
async fn rate<F, Fut>(tasks: usize, per_task: usize, one: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let one = one.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    one().await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    (tasks * per_task) as f64 / started.elapsed().as_secs_f64()
}

const TOTAL: usize = 12_000;

/// One table row: the best of 3 rounds of [`TOTAL`] appends with 8 and with 64 callers; the best of all.
async fn row_for<F, Fut>(name: &str, one: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut cells = Vec::new();
    let mut best_all = 0.0f64;
    for callers in [8, 64] {
        let mut best = 0.0f64;
        for _ in 0..3 {
            best = best.max(rate(callers, TOTAL / callers, one.clone()).await);
        }
        best_all = best_all.max(best);
        cells.push(format!("{best:.0}"));
    }
    println!("| {name} | {} |", cells.join(" | "));
    best_all
}

async fn appends(seed: u64) -> f64 {
    let id = format!("bench{}", Uuid::new_v4().simple().to_string().get(..8).unwrap_or("x"));
    let db = test_support::TestDb::create("governance", &id, &governance::MIGRATIONS).await;
    let pool = kernel::db::connect(&db.app_url.clone().into(), 16).await.expect("pool");
    let kdb = Db::new(pool.clone());
    let tenants: Vec<TenantId> = (0..10).map(|i| TenantId::parse(&format!("bench-{i}")).unwrap()).collect();
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
    let meta =
        || EventMeta { trace_id: "bench".into(), correlation_id: "bench".into(), causation_id: None, actor: None };
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tenant = {
        let (tenants, next) = (Arc::new(tenants), next.clone());
        move || tenants[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % tenants.len()].clone()
    };
    let writer = decisions::writer::start(kdb.clone());

    // One transaction per decision: the command path (`evaluate` + `record` in a `Work`).
    let per_decision = {
        let (kdb, set, req, tenant) = (kdb.clone(), set.clone(), req.clone(), tenant.clone());
        move || {
            let (kdb, set, req, tenant) = (kdb.clone(), set.clone(), req.clone(), tenant());
            async move {
                let mut work =
                    Work::tenant(&kdb, &kernel::Authorized::system(tenant.clone(), "bench"), meta()).await.unwrap();
                let d = decisions::evaluate(&tenant, &set, &req, work.meta()).unwrap();
                decisions::record(&mut work, &d).await.unwrap();
                work.commit().await.unwrap();
            }
        }
    };
    // The API's path: `evaluate`, then the group-commit writer.
    let grouped = {
        let (writer, set, req, tenant) = (writer.clone(), set.clone(), req.clone(), tenant.clone());
        move || {
            let (writer, set, req, tenant) = (writer.clone(), set.clone(), req.clone(), tenant());
            async move {
                let m = meta();
                let d = decisions::evaluate(&tenant, &set, &req, &m).unwrap();
                writer.submit((d, m)).await.unwrap();
            }
        }
    };
    // Bare: one plain INSERT of a decision row per transaction.
    let bare = {
        let tenant = tenant.clone();
        move || {
            let (pool, tenant) = (pool.clone(), tenant());
            async move {
                let mut tx = kernel::db::tenant_tx(&pool, &tenant).await.unwrap();
                sqlx::query(
                    "INSERT INTO decisions (tenant_id, decision_id, principal, action, resource, context,
                        policy_set_version, policy_set_hash, determining_policies, effect, trace_id, correlation_id)
                     VALUES ($1, $2, 'Principal::\"u\"', 'deploy', 'Environment::\"e\"', '{}', 1, 'h', '{}', 'Deny', 't', 'c')",
                )
                .bind(tenant.as_str())
                .bind(Uuid::now_v7())
                .execute(&mut *tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }
    };
    rate(8, 200, bare.clone()).await; // warm up
    println!("\n### Decision appends over 10 tenants, {TOTAL} per round, best of 3 rounds (appends/s)\n");
    println!("| path | 8 callers | 64 callers |");
    println!("|---|---|---|");
    let grouped_best = row_for(
        "`evaluate` + group-commit writer (the API: many decisions and their `PolicyDecided` rows per transaction)",
        grouped,
    )
    .await;
    row_for(
        "`evaluate` + `record` in a `Work` (the command path: decision + outbox row, one transaction each)",
        per_decision,
    )
    .await;
    row_for("bare: one plain `INSERT` of a decision row per transaction", bare).await;
    drop(writer);
    kdb.close().await;
    drop(db);
    grouped_best
}

#[tokio::main]
async fn main() {
    let seed: u64 = std::env::var("BENCH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let e = tokio::task::block_in_place(|| evaluation(seed));
    let appends = appends(seed).await;
    println!("\ntargets (evaluation: of a prepared request, the input the bare baseline takes):");
    let verdict = |ok: bool, what: String| if ok { format!("met ({what})") } else { format!("MISSED ({what})") };
    println!(
        "  evaluation p99 < 50 µs: {}; the subgraph path with prepare: {:.1} µs",
        verdict(e.p99 < 50.0, format!("{:.1} µs", e.p99)),
        e.path_p99
    );
    println!(
        "  ≥ 50,000 evaluations/s on one core: {}; the subgraph path with prepare: {:.0}/s",
        verdict(e.rate >= 50_000.0, format!("{:.0}/s", e.rate)),
        e.path_rate
    );
    println!("  ≥ 5,000 decision appends/s: {}", verdict(appends >= 5_000.0, format!("{appends:.0}/s")));
}
