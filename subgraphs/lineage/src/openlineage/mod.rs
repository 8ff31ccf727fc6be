//! OpenLineage ingestion: `POST /api/v1/lineage`, Marquez's endpoint, so existing OpenLineage
//! integrations (Airflow, Spark, dbt, the OpenLineage clients' HTTP transport) report into the control
//! plane with a tenant's bearer token ([`routes`]).
//!
//! An event is read strictly against the OpenLineage spec (2-0-2, [`read`]): a `RunEvent` (it has a
//! `run`), a `DatasetEvent` (a `dataset`) or a `JobEvent` (a `job`), each with `eventTime` (RFC 3339),
//! `producer` and `schemaURL` (URIs); a run's `runId` a UUID, `eventType` one of the spec's; jobs and
//! datasets a `namespace` and `name`; every facet an object with `_producer` and `_schemaURL`. A missing or
//! malformed required field is 400 naming it (`run.runId`, `outputs[0].name`,
//! `run.facets.nominalTime._schemaURL`), and nothing is recorded.
//!
//! What it says becomes the lineage graph ([`plan`], then [`ingest`] through the group-commit [`writer`]:
//! the events of concurrent requests written set-based in one transaction, each kept as received):
//!
//! * a run event: job → run (RUN), each input dataset → run (INPUT), run → each output dataset (OUTPUT);
//!   the run's node keeps its `state` (the event type), `eventTime` and run facets, the job's its job
//!   facets, each dataset's its dataset facets (`schema`, `columnLineage`, …) with its input or output
//!   facets — the latest event's of each name;
//! * a job event: each input → job (INPUT), job → each output (OUTPUT), with their facets;
//! * a dataset event: the dataset's facets.

pub mod routes;
pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kernel::db::Db;
use kernel::envelope::EventMeta;
use kernel::group_commit::{GroupCommit, Options};
use kernel::{Error, Result, TenantId};
use serde_json::{Map, Value};

use crate::events::LineageEdgeRecorded;
use crate::graph::{self, EdgeKind, NewEdge, NodeRef};

/// The longest namespace or name.
pub const MAX_NAME: usize = 500;
/// Most input and output datasets of one event.
pub const MAX_DATASETS: usize = 1_000;

/// The run states the spec names.
const EVENT_TYPES: [&str; 6] = ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"];

/// A job or dataset as an event names it, with its facets.
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub namespace: String,
    pub name: String,
    /// Its facets, and for a run's datasets its input or output facets, by name.
    pub facets: Map<String, Value>,
}

/// An OpenLineage event as read.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Run {
        event_type: Option<String>,
        event_time: DateTime<Utc>,
        producer: String,
        run_id: uuid::Uuid,
        run_facets: Map<String, Value>,
        job: Named,
        inputs: Vec<Named>,
        outputs: Vec<Named>,
    },
    Dataset {
        event_time: DateTime<Utc>,
        producer: String,
        dataset: Named,
    },
    Job {
        event_time: DateTime<Utc>,
        producer: String,
        job: Named,
        inputs: Vec<Named>,
        outputs: Vec<Named>,
    },
}

fn missing(path: &str) -> Error {
    Error::bad_input(path, format!("`{path}` is required (OpenLineage 2-0-2)"))
}

fn wrong(path: &str, what: &str) -> Error {
    Error::bad_input(path, format!("`{path}` must be {what} (OpenLineage 2-0-2)"))
}

fn object<'a>(v: Option<&'a Value>, path: &str) -> Result<&'a Map<String, Value>> {
    match v {
        None | Some(Value::Null) => Err(missing(path)),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(wrong(path, "an object")),
    }
}

fn string<'a>(m: &'a Map<String, Value>, key: &str, path: &str, max: usize) -> Result<&'a str> {
    let path = format!("{path}{key}");
    match m.get(key) {
        None | Some(Value::Null) => Err(missing(&path)),
        Some(Value::String(s)) if s.is_empty() => Err(wrong(&path, "a non-empty string")),
        Some(Value::String(s)) if s.len() > max => Err(wrong(&path, &format!("at most {max} bytes"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(wrong(&path, "a string")),
    }
}

/// A URI: a scheme (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`), a colon, and more.
fn uri<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str> {
    let s = string(m, key, path, 2_000)?;
    let ok = s.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if ok {
        Ok(s)
    } else {
        Err(wrong(&format!("{path}{key}"), "a URI"))
    }
}

/// A facets object: each facet an object with `_producer` and `_schemaURL` (the spec's BaseFacet).
fn facets(v: Option<&Value>, path: &str) -> Result<Map<String, Value>> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(Map::new()) };
    let m = object(Some(v), path)?;
    for (name, facet) in m {
        let at = format!("{path}.{name}");
        let f = object(Some(facet), &at)?;
        // A facet may be deleted by sending `{ "_deleted": true }` (the spec's), which needs neither.
        if f.get("_deleted") != Some(&Value::Bool(true)) {
            uri(f, "_producer", &format!("{at}."))?;
            uri(f, "_schemaURL", &format!("{at}."))?;
        }
    }
    Ok(m.clone())
}

fn named(v: Option<&Value>, path: &str, extra: &[&str]) -> Result<Named> {
    let m = object(v, path)?;
    let prefix = format!("{path}.");
    let namespace = string(m, "namespace", &prefix, MAX_NAME)?.to_owned();
    let name = string(m, "name", &prefix, MAX_NAME)?.to_owned();
    // Its node id (the name's `/` and `%` escaped) must fit the graph's.
    if NodeRef::dataset(&namespace, &name).id.len() > graph::MAX_NODE_ID {
        return Err(wrong(
            &format!("{path}.name"),
            "shorter: the namespace and the name (its `/` and `%` counted thrice) make too long an id",
        ));
    }
    let mut all = facets(m.get("facets"), &format!("{path}.facets"))?;
    for key in extra {
        all.extend(facets(m.get(*key), &format!("{path}.{key}"))?);
    }
    Ok(Named { namespace, name, facets: all })
}

fn datasets(v: Option<&Value>, path: &str, extra: &str) -> Result<Vec<Named>> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let list = v.as_array().ok_or_else(|| wrong(path, "an array"))?;
    if list.len() > MAX_DATASETS {
        return Err(wrong(path, &format!("at most {MAX_DATASETS} datasets")));
    }
    list.iter().enumerate().map(|(i, d)| named(Some(d), &format!("{path}[{i}]"), &[extra])).collect()
}

/// Reads an event (see the module's documentation).
pub fn read(v: &Value) -> Result<Event> {
    let m = object(Some(v), "event")?;
    let time = string(m, "eventTime", "", 64)?;
    let event_time = DateTime::parse_from_rfc3339(time)
        .map_err(|_| wrong("eventTime", "an RFC 3339 date-time"))?
        .with_timezone(&Utc);
    // PostgreSQL's timestamps have no year 0 and end in 294276; events come from this era.
    if !(1..=9999).contains(&chrono::Datelike::year(&event_time)) {
        return Err(wrong("eventTime", "a date-time in the years 1 to 9999"));
    }
    let producer = uri(m, "producer", "")?.to_owned();
    uri(m, "schemaURL", "")?;
    if m.get("run").is_some_and(|r| !r.is_null()) {
        let run = object(m.get("run"), "run")?;
        let run_id = string(run, "runId", "run.", 64)?;
        let run_id = uuid::Uuid::parse_str(run_id).map_err(|_| wrong("run.runId", "a UUID"))?;
        let event_type = match m.get("eventType") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => Some(t.clone()),
            Some(_) => return Err(wrong("eventType", &format!("one of {}", EVENT_TYPES.join(", ")))),
        };
        return Ok(Event::Run {
            event_type,
            event_time,
            producer,
            run_id,
            run_facets: facets(run.get("facets"), "run.facets")?,
            job: named(m.get("job"), "job", &[])?,
            inputs: datasets(m.get("inputs"), "inputs", "inputFacets")?,
            outputs: datasets(m.get("outputs"), "outputs", "outputFacets")?,
        });
    }
    if m.get("dataset").is_some_and(|d| !d.is_null()) {
        return Ok(Event::Dataset { event_time, producer, dataset: named(m.get("dataset"), "dataset", &[])? });
    }
    if m.get("job").is_some_and(|j| !j.is_null()) {
        return Ok(Event::Job {
            event_time,
            producer,
            job: named(m.get("job"), "job", &[])?,
            inputs: datasets(m.get("inputs"), "inputs", "inputFacets")?,
            outputs: datasets(m.get("outputs"), "outputs", "outputFacets")?,
        });
    }
    Err(Error::bad_input(
        "run",
        "an OpenLineage event has a `run` (RunEvent), a `dataset` (DatasetEvent) or a `job` (JobEvent)",
    ))
}

/// What one event writes: its nodes, edges, facets (by node) and its row as received.
#[derive(Clone, Debug)]
pub struct Plan {
    pub nodes: Vec<NodeRef>,
    pub edges: Vec<NewEdge>,
    pub facets: Vec<(String, Value)>,
    pub kind: &'static str,
    pub event_type: Option<String>,
    pub event_time: DateTime<Utc>,
    pub run_id: Option<uuid::Uuid>,
    pub job: Option<String>,
    pub producer: String,
}

/// What `event` writes (see the module's documentation).
pub fn plan(event: &Event) -> Plan {
    let dataset = |d: &Named| NodeRef::dataset(&d.namespace, &d.name);
    let facets_of = |d: &Named| (dataset(d).id, Value::Object(d.facets.clone()));
    let mut p = match event {
        Event::Run { event_type, event_time, producer, run_id, run_facets, job, inputs, outputs } => {
            let job_node = NodeRef::job(&job.namespace, &job.name);
            let run = NodeRef::run(*run_id, &job.name);
            let mut edges = vec![NewEdge { from: job_node.clone(), to: run.clone(), kind: EdgeKind::Run }];
            edges.extend(inputs.iter().map(|d| NewEdge { from: dataset(d), to: run.clone(), kind: EdgeKind::Input }));
            edges.extend(outputs.iter().map(|d| NewEdge { from: run.clone(), to: dataset(d), kind: EdgeKind::Output }));
            let mut state = run_facets.clone();
            if let Some(t) = event_type {
                state.insert("state".into(), Value::String(t.clone()));
            }
            let mut facets =
                vec![(run.id.clone(), Value::Object(state)), (job_node.id.clone(), Value::Object(job.facets.clone()))];
            facets.extend(inputs.iter().chain(outputs).map(facets_of));
            Plan {
                nodes: Vec::new(),
                edges,
                facets,
                kind: "run",
                event_type: event_type.clone(),
                event_time: *event_time,
                run_id: Some(*run_id),
                job: Some(format!("{}/{}", job.namespace, job.name)),
                producer: producer.clone(),
            }
        }
        Event::Job { event_time, producer, job, inputs, outputs } => {
            let job_node = NodeRef::job(&job.namespace, &job.name);
            let mut edges: Vec<NewEdge> = inputs
                .iter()
                .map(|d| NewEdge { from: dataset(d), to: job_node.clone(), kind: EdgeKind::Input })
                .collect();
            edges.extend(outputs.iter().map(|d| NewEdge {
                from: job_node.clone(),
                to: dataset(d),
                kind: EdgeKind::Output,
            }));
            let mut facets = vec![(job_node.id.clone(), Value::Object(job.facets.clone()))];
            facets.extend(inputs.iter().chain(outputs).map(facets_of));
            Plan {
                nodes: vec![job_node],
                edges,
                facets,
                kind: "job",
                event_type: None,
                event_time: *event_time,
                run_id: None,
                job: Some(format!("{}/{}", job.namespace, job.name)),
                producer: producer.clone(),
            }
        }
        Event::Dataset { event_time, producer, dataset: d } => Plan {
            nodes: vec![dataset(d)],
            edges: Vec::new(),
            facets: vec![facets_of(d)],
            kind: "dataset",
            event_type: None,
            event_time: *event_time,
            run_id: None,
            job: None,
            producer: producer.clone(),
        },
    };
    p.nodes.extend(p.edges.iter().flat_map(|e| [e.from.clone(), e.to.clone()]));
    // Each node keeps the latest event's facets, whatever order events arrive in.
    p.facets.retain(|(_, f)| f.as_object().is_some_and(|f| !f.is_empty()));
    for (_, f) in &mut p.facets {
        if let Some(f) = f.as_object_mut() {
            f.insert("eventTime".into(), Value::String(p.event_time.to_rfc3339()));
        }
    }
    p
}

/// One event to write: whose, what it says, as received, and the ids its edges' events carry.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub tenant: TenantId,
    pub plan: Plan,
    pub raw: Value,
    pub meta: EventMeta,
    /// The event's id as received, made once: a batch written again keeps it (stored once).
    pub received_id: uuid::Uuid,
}

impl Submitted {
    pub fn new(tenant: TenantId, plan: Plan, raw: Value, meta: EventMeta) -> Self {
        Self { tenant, plan, raw, meta, received_id: uuid::Uuid::now_v7() }
    }
}

/// Writes events of any tenants in the caller's transaction, set-based: per tenant, its nodes in one
/// statement, its edges in one, its facets in one, its events as received in one (under row-level
/// security for that tenant); then every new edge's `LineageEdgeRecorded`, in one. Rows go in id order,
/// so concurrent batches lock shared nodes in the same order.
pub async fn ingest(tx: &mut kernel::db::Tx, batch: &[Submitted]) -> Result<()> {
    let mut by_tenant: BTreeMap<&TenantId, Vec<&Submitted>> = BTreeMap::new();
    for s in batch {
        by_tenant.entry(&s.tenant).or_default().push(s);
    }
    let mut recorded: Vec<(TenantId, EventMeta, LineageEdgeRecorded)> = Vec::new();
    for (tenant, mut items) in by_tenant {
        kernel::db::set_tenant(tx, tenant).await?;
        // Oldest first, so a node's facets end as the latest event's.
        items.sort_by_key(|s| s.plan.event_time);
        let mut nodes: BTreeMap<&str, &NodeRef> = BTreeMap::new();
        let mut edges: BTreeMap<(&str, &str, EdgeKind), (&NewEdge, &EventMeta)> = BTreeMap::new();
        let mut facets: Vec<(&str, DateTime<Utc>, &Value)> = Vec::new();
        for s in &items {
            for n in &s.plan.nodes {
                nodes.entry(n.id.as_str()).or_insert(n);
            }
            for e in &s.plan.edges {
                edges.entry((e.from.id.as_str(), e.to.id.as_str(), e.kind)).or_insert((e, &s.meta));
            }
            facets.extend(s.plan.facets.iter().map(|(node, f)| (node.as_str(), s.plan.event_time, f)));
        }
        let nodes: Vec<&NodeRef> = nodes.into_values().collect();
        graph::store::upsert_nodes(tx, tenant, &nodes).await?;
        let list: Vec<NewEdge> = edges.values().map(|(e, _)| (*e).clone()).collect();
        for (from, to, kind) in graph::store::insert_edges(tx, tenant, &list).await? {
            let meta = edges
                .get(&(from.as_str(), to.as_str(), kind))
                .map_or_else(|| items[0].meta.clone(), |(_, m)| (*m).clone());
            recorded.push((tenant.clone(), meta, LineageEdgeRecorded { from, to, kind }));
        }
        // Each node takes, oldest first, only facets of events newer than what it holds (its nodes are locked
        // by the upsert above, so what is read here stays true until the commit).
        let ids: Vec<String> = facets.iter().map(|(n, _, _)| (*n).to_owned()).collect();
        let mut held = graph::store::facet_times(tx, tenant, &ids).await?;
        let mut merged: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for (node, time, f) in facets {
            let newer = held.get(node).is_none_or(|t| time >= *t);
            if let (true, Some(f)) = (newer, f.as_object()) {
                held.insert(node.to_owned(), time);
                merged.entry(node).or_default().extend(f.clone());
            }
        }
        let merged: Vec<(String, Value)> = merged.into_iter().map(|(n, f)| (n.to_owned(), Value::Object(f))).collect();
        graph::store::merge_many_facets(tx, tenant, &merged).await?;
        store::insert_events(tx, tenant, &items).await?;
    }
    kernel::outbox::enqueue_batch(tx, recorded.iter().map(|(t, m, e)| (t, m, e))).await?;
    Ok(())
}

/// The writer `POST /api/v1/lineage` hands its events to: the events of every concurrent request, of any
/// tenants, written in one transaction and answered once it has committed (`kernel::group_commit`; a
/// batch that fails is written again one event at a time, so one bad event fails its own request only).
pub type Writer = GroupCommit<Submitted>;

/// Starts the writer (on the current runtime).
pub fn writer(db: Db) -> Writer {
    // At most 64 events a batch: a batch is held whole (and once more for the one-by-one retry), and an event
    // may be 1 MiB.
    GroupCommit::start(Options { max_batch: 64, in_flight: 2, queue: 1_024 }, move |batch: Vec<Submitted>| {
        let db = db.clone();
        async move {
            let Some(first) = batch.first() else { return Ok(()) };
            let mut tx = db.tenant_tx(&first.tenant).await?;
            ingest(&mut tx, &batch).await?;
            tx.commit().await?;
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run_event() -> Value {
        json!({
            "eventType": "COMPLETE", "eventTime": "2026-12-07T10:00:00.000Z",
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": { "runId": "0193a0c4-7b1e-7c4a-9f00-000000000001", "facets": {} },
            "job": { "namespace": "etl", "name": "orders.daily" },
            "inputs": [{ "namespace": "postgres://db:5432", "name": "public.orders",
                         "facets": { "schema": { "_producer": "https://x/p", "_schemaURL": "https://x/s", "fields": [] } } }],
            "outputs": [{ "namespace": "s3://lake", "name": "orders_daily" }]
        })
    }

    #[test]
    fn a_run_event_reads_with_its_job_and_datasets() {
        let Event::Run { event_type, run_id, job, inputs, outputs, .. } = read(&run_event()).unwrap() else {
            panic!("a run event")
        };
        assert_eq!(event_type.as_deref(), Some("COMPLETE"));
        assert_eq!(run_id.to_string(), "0193a0c4-7b1e-7c4a-9f00-000000000001");
        assert_eq!((job.namespace.as_str(), job.name.as_str()), ("etl", "orders.daily"));
        assert_eq!(inputs[0].facets["schema"]["_producer"], "https://x/p");
        assert_eq!(outputs[0].name, "orders_daily");
    }

    #[test]
    fn a_missing_or_malformed_required_field_is_named() {
        type Spoil = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "eventTime",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("eventTime");
                }),
            ),
            ("eventTime", Box::new(|e| e["eventTime"] = json!("yesterday"))),
            (
                "producer",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("producer");
                }),
            ),
            ("schemaURL", Box::new(|e| e["schemaURL"] = json!("not a uri"))),
            (
                "run.runId",
                Box::new(|e| {
                    e["run"].as_object_mut().unwrap().remove("runId");
                }),
            ),
            ("run.runId", Box::new(|e| e["run"]["runId"] = json!("42"))),
            ("eventType", Box::new(|e| e["eventType"] = json!("DONE"))),
            (
                "job",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("job");
                }),
            ),
            (
                "job.name",
                Box::new(|e| {
                    e["job"].as_object_mut().unwrap().remove("name");
                }),
            ),
            ("inputs[0].namespace", Box::new(|e| e["inputs"][0]["namespace"] = json!(7))),
            ("outputs[0].name", Box::new(|e| e["outputs"][0]["name"] = json!(""))),
            (
                "inputs[0].facets.schema._schemaURL",
                Box::new(|e| {
                    e["inputs"][0]["facets"]["schema"].as_object_mut().unwrap().remove("_schemaURL");
                }),
            ),
            (
                "run",
                Box::new(|e| {
                    for k in ["run", "job"] {
                        e.as_object_mut().unwrap().remove(k);
                    }
                }),
            ),
        ];
        for (field, spoil) in cases {
            let mut e = run_event();
            spoil(&mut e);
            let err = read(&e).expect_err(field);
            assert_eq!(err.code(), kernel::error::Code::BadUserInput);
            let named = err.to_graphql().extensions.and_then(|x| x.get("field").cloned());
            assert_eq!(named, Some(async_graphql::Value::from(field)), "{field}: {}", err.describe());
        }
    }

    #[test]
    fn dataset_and_job_events_read_too() {
        let base = json!({ "eventTime": "2026-12-07T10:00:00Z", "producer": "https://p", "schemaURL": "https://s" });
        let mut d = base.clone();
        d["dataset"] = json!({ "namespace": "s3://lake", "name": "t" });
        assert!(matches!(read(&d).unwrap(), Event::Dataset { .. }));
        let mut j = base.clone();
        j["job"] = json!({ "namespace": "etl", "name": "j" });
        j["outputs"] = json!([{ "namespace": "s3://lake", "name": "t" }]);
        assert!(matches!(read(&j).unwrap(), Event::Job { ref outputs, .. } if outputs.len() == 1));
    }
}
