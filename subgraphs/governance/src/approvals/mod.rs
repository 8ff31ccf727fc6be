//! Approvals: any domain asks for one with a `RequestApproval` command (`requests.rs`; catalogue for a prod
//! environment change, workflow for a gate) or a caller with the `requestApproval` mutation. A request
//! names its subject, the approver roles (an approver must hold one, as identity's role bindings say:
//! `directory.rs`), a quorum (N approvals of the approvers) and an expiry. States: Pending → Approved |
//! Rejected | Expired | Cancelled, each final. The requester can never vote on its own request; one
//! rejection rejects; the quorum's last approval approves; the expiry worker (`expiry.rs`) expires what
//! nobody decided in time. The outcome events (`ApprovalGranted`, `ApprovalRejected`, `ApprovalExpired`,
//! declared in `kernel::contracts::governance`) carry the subject back and the request's correlation id in
//! the envelope, so the requester finds its own request. Requests are kept for their lifetime and seven
//! years after: nothing deletes them.

pub mod expiry;
pub mod requests;
pub mod schema;
pub mod store;

use async_graphql::{ComplexObject, Enum, SimpleObject, ID};
use chrono::{DateTime, Duration, Utc};
use kernel::contracts::governance::{
    ApprovalExpired, ApprovalGranted, ApprovalRejected, ApprovalRequest, ApprovalSubject,
};
use kernel::db::Db;
use kernel::envelope::EventMeta;
use kernel::{Error, Result, TenantId, Work};
use serde_json::Value;

use crate::events;
use crate::ids::ApprovalId;

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ApprovalStatus {
        Pending = "Pending",
        Approved = "Approved",
        Rejected = "Rejected",
        Expired = "Expired",
        Cancelled = "Cancelled",
    }
}

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[graphql(name = "ApprovalVoteChoice")]
    pub enum Vote {
        Approve = "Approve",
        Reject = "Reject",
    }
}

/// One approver's vote.
#[derive(SimpleObject, Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalVote {
    pub principal: String,
    #[serde(deserialize_with = "vote_from_text")]
    pub vote: Vote,
    /// The approver roles the voter held when voting.
    pub as_roles: Vec<String>,
    pub note: Option<String>,
    pub voted_at: DateTime<Utc>,
}

fn vote_from_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vote, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    Vote::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown vote {s}")))
}

/// An approval request.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Approval {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub approval_id: ApprovalId,
    /// `<domain>.<Thing>`, e.g. `catalogue.EnvironmentChange`.
    pub subject_kind: String,
    /// The thing's id in the requesting domain.
    pub subject_id: String,
    pub project_id: Option<String>,
    pub summary: String,
    #[graphql(skip)]
    pub details: Value,
    pub approver_roles: Vec<String>,
    pub quorum: i32,
    pub requested_by: String,
    pub status: ApprovalStatus,
    pub expires_at: DateTime<Utc>,
    #[graphql(skip)]
    pub trace_id: String,
    /// The request's correlation id: the outcome event carries it.
    pub correlation_id: String,
    #[graphql(skip)]
    pub request_event: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    #[graphql(skip)]
    pub votes: sqlx::types::Json<Vec<ApprovalVote>>,
}

#[ComplexObject]
impl Approval {
    async fn id(&self) -> ID {
        ID(self.approval_id.to_string())
    }

    /// What the approver should see (the change itself).
    async fn details(&self) -> async_graphql::Json<&Value> {
        async_graphql::Json(&self.details)
    }

    /// The votes so far, oldest first.
    async fn votes(&self) -> &[ApprovalVote] {
        &self.votes.0
    }

    /// Approvals counted toward the quorum.
    async fn approvals(&self) -> i32 {
        self.approve_count()
    }
}

impl Approval {
    pub fn approve_count(&self) -> i32 {
        self.votes.0.iter().filter(|v| v.vote == Vote::Approve).count() as i32
    }

    fn subject(&self) -> ApprovalSubject {
        ApprovalSubject {
            kind: self.subject_kind.clone(),
            id: self.subject_id.clone(),
            project_id: self.project_id.clone(),
        }
    }

    /// The meta of events answering this request: its correlation, caused by the request, traced by `trace`,
    /// acted by `actor` (the voter or canceller; none when it expires).
    fn answer_meta(&self, trace: &str, actor: Option<&str>) -> EventMeta {
        EventMeta {
            trace_id: trace.to_owned(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.request_event.clone(),
            actor: actor.map(str::to_owned),
        }
    }
}

/// The longest a request may stay open.
pub const MAX_TTL_DAYS: i64 = 90;
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;

/// A checked request.
#[derive(Clone, Debug)]
pub struct NewApproval {
    pub subject: ApprovalSubject,
    pub summary: String,
    pub details: Value,
    pub approver_roles: Vec<String>,
    pub quorum: i32,
    pub requested_by: String,
    pub expires_at: DateTime<Utc>,
}

fn role_key(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::bad_input("approverRoles", format!("`{}` is not a role key", kernel::error::clip(raw, 64))))
    }
}

impl NewApproval {
    /// Checks a request (from a command or the API).
    pub fn parse(r: ApprovalRequest, now: DateTime<Utc>) -> Result<Self> {
        let kind_ok = r.subject.kind.split_once('.').is_some_and(|(d, t)| {
            !d.is_empty()
                && d.starts_with(|c: char| c.is_ascii_lowercase())
                && d.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && t.starts_with(|c: char| c.is_ascii_alphabetic())
                && t.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !kind_ok || r.subject.kind.len() > 100 {
            return Err(Error::bad_input(
                "subject.kind",
                "subject.kind is `<domain>.<Thing>`, e.g. `catalogue.EnvironmentChange`",
            ));
        }
        let id = r.subject.id.trim();
        if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
            return Err(Error::bad_input("subject.id", "subject.id is 1–200 characters"));
        }
        let summary = kernel::error::text("summary", &r.summary, 500)?;
        let mut roles = r.approver_roles.iter().map(|x| role_key(x)).collect::<Result<Vec<_>>>()?;
        roles.sort();
        roles.dedup();
        if roles.is_empty() || roles.len() > 20 {
            return Err(Error::bad_input("approverRoles", "name 1–20 approver roles"));
        }
        if !(1..=20).contains(&r.quorum) {
            return Err(Error::bad_input("quorum", "quorum is between 1 and 20"));
        }
        if r.expires_at <= now {
            return Err(Error::bad_input("expiresAt", "expiresAt must be in the future"));
        }
        if r.expires_at > now + Duration::days(MAX_TTL_DAYS) {
            return Err(Error::bad_input("expiresAt", format!("a request stays open at most {MAX_TTL_DAYS} days")));
        }
        let details = if r.details.is_null() { Value::Object(Default::default()) } else { r.details };
        if !details.is_object() {
            return Err(Error::bad_input("details", "details must be a JSON object"));
        }
        if serde_json::to_vec(&details).map_or(usize::MAX, |v| v.len()) > MAX_DETAILS_BYTES {
            return Err(Error::bad_input("details", format!("details are at most {MAX_DETAILS_BYTES} bytes")));
        }
        kernel::secrets::check_no_inline_secrets("details", &details)?;
        let requested_by = kernel::error::text("requestedBy", &r.requested_by, 200)?;
        let project_id = r.subject.project_id.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
        if project_id.as_ref().is_some_and(|p| p.len() > 100) {
            return Err(Error::bad_input("subject.projectId", "subject.projectId is at most 100 characters"));
        }
        Ok(Self {
            subject: ApprovalSubject { kind: r.subject.kind, id: id.to_owned(), project_id },
            summary,
            details,
            approver_roles: roles,
            quorum: r.quorum as i32,
            requested_by,
            expires_at: r.expires_at,
        })
    }
}

/// Who asks for an approval: a domain's `RequestApproval` command (naming the publishing domain, as the
/// broker vouches for it), or a caller of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester<'a> {
    Domain(&'a str),
    Api,
}

/// A subject's kind belongs to the domain it names (`catalogue.EnvironmentChange` to catalogue): only that
/// domain may ask about it, since only it acts on the answer. An API caller may ask about kinds of its own
/// (`release.Gate`, a partner's CI), never a platform domain's: otherwise it could open a request for a
/// pending prod change with approver roles and a quorum of its choosing.
pub fn may_ask(requester: Requester<'_>, kind: &str) -> Result<()> {
    let domain = kind.split_once('.').map_or(kind, |(d, _)| d);
    let platform = kernel::contracts::DOMAINS.contains(&domain);
    match requester {
        Requester::Domain(d) if d == domain => Ok(()),
        Requester::Domain(d) => Err(Error::forbidden(format!(
            "{d} asked for an approval of a {domain} subject; a domain asks only about its own"
        ))),
        Requester::Api if platform => Err(Error::forbidden(format!(
            "approvals of {domain} subjects are asked for by {domain} itself, not through the API"
        ))),
        Requester::Api => Ok(()),
    }
}

/// Opens a request unless one is open for the subject already (then that one, `false`): a command
/// delivered twice, or re-sent, opens one request. Emits `ApprovalRequested` for a new one. The request
/// keeps `work`'s trace and correlation ids and causation (the command's event id).
pub async fn request(work: &mut Work, tenant: &TenantId, new: &NewApproval) -> Result<(Approval, bool)> {
    let meta = work.meta().clone();
    if let Some(a) = store::insert_if_no_pending(work, tenant, ApprovalId::new_v7(), new, &meta).await? {
        let event = events::ApprovalRequested {
            approval_id: a.approval_id,
            subject_kind: a.subject_kind.clone(),
            subject_id: a.subject_id.clone(),
            project_id: a.project_id.clone(),
            approver_roles: a.approver_roles.clone(),
            quorum: a.quorum,
            requested_by: a.requested_by.clone(),
            expires_at: a.expires_at,
        };
        work.emit(tenant, &event).await?;
        return Ok((a, true));
    }
    let open = store::pending_for(work, tenant, &new.subject.kind, &new.subject.id)
        .await?
        .ok_or_else(|| Error::conflict("the subject's open request was decided at the same time; ask again"))?;
    Ok((open, false))
}

/// `voter` (with `approvals:decide`) votes on request `id`: `FORBIDDEN` for the requester itself or a voter
/// without one of the request's approver roles; `CONFLICT` when it is no longer pending, has expired, or
/// the voter voted already. One rejection rejects; the approval completing the quorum approves. The
/// outcome event carries the request's correlation id.
pub async fn vote(
    db: &Db,
    tenant: &TenantId,
    id: ApprovalId,
    voter: &str,
    vote: Vote,
    note: Option<String>,
    trace: &str,
) -> Result<Approval> {
    let mut tx = db.tenant_tx(tenant).await?;
    let a = store::lock(&mut tx, tenant, id).await?.ok_or_else(|| Error::not_found(format!("no approval `{id}`")))?;
    let mut work = Work::from_tx(tx, a.answer_meta(trace, Some(voter)));
    if a.status != ApprovalStatus::Pending {
        return Err(Error::conflict(format!("approval `{id}` is {} and final", a.status.as_str())));
    }
    if a.expires_at <= Utc::now() {
        return Err(Error::conflict(format!("approval `{id}` has expired")));
    }
    if a.requested_by == voter {
        return Err(Error::forbidden("the requester cannot decide its own request"));
    }
    let held = store::roles_of(&mut work, tenant, voter).await?;
    let as_roles: Vec<String> = a.approver_roles.iter().filter(|r| held.contains(r)).cloned().collect();
    if as_roles.is_empty() {
        return Err(Error::forbidden(format!(
            "deciding this request takes one of the roles {}",
            a.approver_roles.join(", ")
        )));
    }
    let note = note.map(|n| kernel::error::text("note", &n, 1000)).transpose()?;
    if !store::insert_vote(&mut work, tenant, id, voter, vote, &as_roles, note.as_deref()).await? {
        return Err(Error::conflict(format!("{voter} has voted on approval `{id}` already")));
    }
    let a = store::lock(&mut work, tenant, id).await?.expect("locked above");
    let approvals = a.approve_count();
    work.emit(
        tenant,
        &events::ApprovalVoted { approval_id: id, principal: voter.to_owned(), vote, approvals, quorum: a.quorum },
    )
    .await?;
    let a = match vote {
        Vote::Reject => {
            let a = store::finish(&mut work, tenant, id, ApprovalStatus::Rejected, note.as_deref()).await?;
            let event = ApprovalRejected {
                approval_id: id,
                subject: a.subject(),
                decided_by: vec![voter.to_owned()],
                note: note.clone(),
            };
            work.emit(tenant, &event).await?;
            a
        }
        Vote::Approve if approvals >= a.quorum => {
            let a = store::finish(&mut work, tenant, id, ApprovalStatus::Approved, note.as_deref()).await?;
            let decided_by =
                a.votes.0.iter().filter(|v| v.vote == Vote::Approve).map(|v| v.principal.clone()).collect();
            let event = ApprovalGranted { approval_id: id, subject: a.subject(), decided_by, note: note.clone() };
            work.emit(tenant, &event).await?;
            a
        }
        Vote::Approve => a,
    };
    work.commit().await?;
    Ok(a)
}

/// The requester withdraws a pending request. Emits `ApprovalCancelled`, an outcome the requesting domain
/// hears like the others (catalogue discards the pending change, so the environment takes a new one).
pub async fn cancel(db: &Db, tenant: &TenantId, id: ApprovalId, by: &str, trace: &str) -> Result<Approval> {
    let mut tx = db.tenant_tx(tenant).await?;
    let a = store::lock(&mut tx, tenant, id).await?.ok_or_else(|| Error::not_found(format!("no approval `{id}`")))?;
    let mut work = Work::from_tx(tx, a.answer_meta(trace, Some(by)));
    if a.status != ApprovalStatus::Pending {
        return Err(Error::conflict(format!("approval `{id}` is {} and final", a.status.as_str())));
    }
    if a.requested_by != by {
        return Err(Error::forbidden("only the requester can cancel a request"));
    }
    let a = store::finish(&mut work, tenant, id, ApprovalStatus::Cancelled, None).await?;
    let event = events::ApprovalCancelled {
        approval_id: id,
        subject_kind: a.subject_kind.clone(),
        subject_id: a.subject_id.clone(),
        cancelled_by: by.to_owned(),
    };
    work.emit(tenant, &event).await?;
    work.commit().await?;
    Ok(a)
}

/// Expires request `id` if it is still pending past its expiry (else leaves it): emits `ApprovalExpired`.
pub async fn expire(db: &Db, tenant: &TenantId, id: ApprovalId) -> Result<bool> {
    let mut tx = db.tenant_tx(tenant).await?;
    let Some(a) = store::lock(&mut tx, tenant, id).await? else { return Ok(false) };
    if a.status != ApprovalStatus::Pending || a.expires_at > Utc::now() {
        return Ok(false);
    }
    let mut work = Work::from_tx(tx, a.answer_meta(&a.trace_id, None));
    let a = store::finish(&mut work, tenant, id, ApprovalStatus::Expired, None).await?;
    work.emit(tenant, &ApprovalExpired { approval_id: id, subject: a.subject() }).await?;
    work.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ApprovalRequest {
        ApprovalRequest {
            subject: ApprovalSubject { kind: "catalogue.EnvironmentChange".into(), id: "c1".into(), project_id: None },
            summary: "ship it".into(),
            approver_roles: vec!["release-approver".into(), "release-approver".into()],
            quorum: 1,
            requested_by: "alice".into(),
            expires_at: Utc::now() + Duration::hours(1),
            details: Value::Null,
        }
    }

    type Change = Box<dyn Fn(&mut ApprovalRequest)>;

    #[test]
    fn a_subject_kind_is_asked_about_by_its_own_domain_only() {
        assert!(may_ask(Requester::Domain("catalogue"), "catalogue.EnvironmentChange").is_ok());
        assert!(may_ask(Requester::Domain("workflow"), "catalogue.EnvironmentChange").is_err());
        assert!(may_ask(Requester::Api, "catalogue.EnvironmentChange").is_err());
        assert!(may_ask(Requester::Api, "workflow.Gate").is_err());
        assert!(may_ask(Requester::Api, "release.Gate").is_ok());
        assert_eq!(may_ask(Requester::Api, "governance.X").unwrap_err().code(), kernel::Code::Forbidden);
    }

    #[test]
    fn requests_are_checked() {
        let now = Utc::now();
        let ok = NewApproval::parse(req(), now).unwrap();
        assert_eq!(ok.approver_roles, vec!["release-approver".to_owned()], "roles deduplicated");
        assert!(ok.details.is_object());
        let cases: Vec<(&str, Change)> = vec![
            ("subject.kind", Box::new(|r| r.subject.kind = "EnvironmentChange".into())),
            ("subject.id", Box::new(|r| r.subject.id = " ".into())),
            ("approverRoles", Box::new(|r| r.approver_roles = vec![])),
            ("approverRoles", Box::new(|r| r.approver_roles = vec!["Bad Role".into()])),
            ("quorum", Box::new(|r| r.quorum = 0)),
            ("quorum", Box::new(|r| r.quorum = 21)),
            ("expiresAt", Box::new(|r| r.expires_at = Utc::now() - Duration::seconds(1))),
            ("expiresAt", Box::new(|r| r.expires_at = Utc::now() + Duration::days(91))),
            ("details", Box::new(|r| r.details = serde_json::json!([1]))),
            ("details", Box::new(|r| r.details = serde_json::json!({ "password": "hunter2" }))),
            ("summary", Box::new(|r| r.summary = String::new())),
        ];
        for (field, change) in cases {
            let mut r = req();
            change(&mut r);
            match NewApproval::parse(r, now) {
                Err(Error::BadInput { field: Some(f), .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
