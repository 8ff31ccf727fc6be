//! Approvals' SQL. Every statement names the tenant; row-level security holds it to the transaction's.
//! A request is read with its votes (one statement).

use kernel::db::Tx;
use kernel::envelope::EventMeta;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use super::{Approval, ApprovalStatus, NewApproval, Vote};
use crate::ids::ApprovalId;

/// Inserts the request unless the subject has an open one (then `None`).
pub async fn insert_if_no_pending(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ApprovalId,
    a: &NewApproval,
    meta: &EventMeta,
) -> Result<Option<Approval>> {
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO approvals (tenant_id, approval_id, subject_kind, subject_id, project_id, summary, details,
                                  approver_roles, quorum, requested_by, expires_at, trace_id, correlation_id,
                                  request_event)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT (tenant_id, subject_kind, subject_id) WHERE status = 'Pending' DO NOTHING
           RETURNING approval_id"#,
        tenant.as_str(),
        id as ApprovalId,
        a.subject.kind,
        a.subject.id,
        a.subject.project_id,
        a.summary,
        a.details,
        &a.approver_roles,
        a.quorum,
        a.requested_by,
        a.expires_at,
        meta.trace_id,
        meta.correlation_id,
        meta.causation_id,
    )
    .fetch_optional(&mut **tx)
    .await?;
    match inserted {
        Some(id) => Ok(Some(by_id(tx, tenant, id.into()).await?.expect("inserted above"))),
        None => Ok(None),
    }
}

pub async fn by_id(tx: &mut Tx, tenant: &TenantId, id: ApprovalId) -> Result<Option<Approval>> {
    Ok(sqlx::query_as!(
        Approval,
        r#"SELECT a.tenant_id AS "tenant_id: TenantId", a.approval_id, a.subject_kind, a.subject_id, a.project_id,
                  a.summary, a.details, a.approver_roles, a.quorum, a.requested_by, a.status AS "status: ApprovalStatus",
                  a.expires_at, a.trace_id, a.correlation_id, a.request_event, a.requested_at, a.decided_at,
                  a.decision_note,
                  COALESCE((SELECT jsonb_agg(jsonb_build_object('principal', v.principal, 'vote', v.vote,
                                    'asRoles', v.as_roles, 'note', v.note, 'votedAt', v.voted_at) ORDER BY v.voted_at)
                            FROM approval_votes v WHERE v.tenant_id = a.tenant_id AND v.approval_id = a.approval_id),
                           '[]') AS "votes!: sqlx::types::Json<Vec<super::ApprovalVote>>"
           FROM approvals a WHERE a.tenant_id = $1 AND a.approval_id = $2"#,
        tenant.as_str(),
        id as ApprovalId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// The request, locked for a decision, with its votes.
pub async fn lock(tx: &mut Tx, tenant: &TenantId, id: ApprovalId) -> Result<Option<Approval>> {
    let found = sqlx::query_scalar!(
        "SELECT approval_id FROM approvals WHERE tenant_id = $1 AND approval_id = $2 FOR UPDATE",
        tenant.as_str(),
        id as ApprovalId,
    )
    .fetch_optional(&mut **tx)
    .await?;
    match found {
        Some(_) => by_id(tx, tenant, id).await,
        None => Ok(None),
    }
}

/// The subject's open request, if any.
pub async fn pending_for(tx: &mut Tx, tenant: &TenantId, kind: &str, subject: &str) -> Result<Option<Approval>> {
    let id = sqlx::query_scalar!(
        "SELECT approval_id FROM approvals
         WHERE tenant_id = $1 AND subject_kind = $2 AND subject_id = $3 AND status = 'Pending'",
        tenant.as_str(),
        kind,
        subject,
    )
    .fetch_optional(&mut **tx)
    .await?;
    match id {
        Some(id) => by_id(tx, tenant, id.into()).await,
        None => Ok(None),
    }
}

/// Records a vote; `false` when the voter voted on this request already.
#[allow(clippy::too_many_arguments)]
pub async fn insert_vote(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ApprovalId,
    voter: &str,
    vote: Vote,
    as_roles: &[String],
    note: Option<&str>,
) -> Result<bool> {
    let r = sqlx::query!(
        "INSERT INTO approval_votes (tenant_id, approval_id, principal, vote, as_roles, note)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        tenant.as_str(),
        id as ApprovalId,
        voter,
        vote.as_str(),
        as_roles,
        note,
    )
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Moves a pending request to its final state.
pub async fn finish(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ApprovalId,
    status: ApprovalStatus,
    note: Option<&str>,
) -> Result<Approval> {
    sqlx::query!(
        "UPDATE approvals SET status = $3, decided_at = now(), decision_note = $4
         WHERE tenant_id = $1 AND approval_id = $2",
        tenant.as_str(),
        id as ApprovalId,
        status.as_str(),
        note,
    )
    .execute(&mut **tx)
    .await
    .on_constraint("approvals_final", || Error::conflict(format!("approval `{id}` is final")))?;
    Ok(by_id(tx, tenant, id).await?.expect("updated above"))
}

/// A page of requests, newest first (ids are UUIDv7), optionally of one status.
pub async fn page(
    tx: &mut Tx,
    tenant: &TenantId,
    status: Option<ApprovalStatus>,
    before: Option<ApprovalId>,
    limit: i64,
) -> Result<Vec<Approval>> {
    Ok(sqlx::query_as!(
        Approval,
        r#"SELECT a.tenant_id AS "tenant_id: TenantId", a.approval_id, a.subject_kind, a.subject_id, a.project_id,
                  a.summary, a.details, a.approver_roles, a.quorum, a.requested_by, a.status AS "status: ApprovalStatus",
                  a.expires_at, a.trace_id, a.correlation_id, a.request_event, a.requested_at, a.decided_at,
                  a.decision_note,
                  COALESCE((SELECT jsonb_agg(jsonb_build_object('principal', v.principal, 'vote', v.vote,
                                    'asRoles', v.as_roles, 'note', v.note, 'votedAt', v.voted_at) ORDER BY v.voted_at)
                            FROM approval_votes v WHERE v.tenant_id = a.tenant_id AND v.approval_id = a.approval_id),
                           '[]') AS "votes!: sqlx::types::Json<Vec<super::ApprovalVote>>"
           FROM approvals a
           WHERE a.tenant_id = $1 AND ($2::text IS NULL OR a.status = $2) AND ($3::uuid IS NULL OR a.approval_id < $3)
           ORDER BY a.approval_id DESC
           LIMIT $4"#,
        tenant.as_str(),
        status.map(|s| s.as_str()),
        before as Option<ApprovalId>,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The roles `principal` holds, as identity's events told.
pub async fn roles_of(tx: &mut Tx, tenant: &TenantId, principal: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT role_key FROM principal_roles WHERE tenant_id = $1 AND principal = $2 AND bound ORDER BY role_key",
        tenant.as_str(),
        principal,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Pending requests past their expiry, across tenants (the owner's function), oldest first.
pub async fn expired(tx: &mut Tx, batch: i32) -> Result<Vec<(TenantId, ApprovalId)>> {
    let rows = sqlx::query!(
        r#"SELECT tenant_id AS "tenant_id!: TenantId", approval_id AS "approval_id!" FROM governance_expired_approvals($1)"#,
        batch,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.approval_id.into())).collect())
}
