//! The saga: each instance moves Created → Running → AssigningTask → AwaitingAgent → Running … →
//! Completed | Failed | Cancelled, pausing only at approval gates, waits, and while a failure unwinds.
//!
//! | file | does |
//! |---|---|
//! | `state.rs` | the instance as its history leaves it (a pure fold) |
//! | `decide.rs` | what it does next after each event (pure, deterministic: replay relies on it) |
//! | `engine.rs` | the unit of work: load under the stream's lock, record a fact, append the decisions, run their effects (timers, agent leases, the approval command, usage) in the same transaction |
//! | `timers.rs` | the instance's durable timers firing (waits, timeouts, backoffs, assignment and lease checks) |
//! | `approvals.rs` | governance's answers to the gates' `RequestApproval` commands |
//! | `commands.rs` | `StartWorkflow`, `CancelWorkflow`, `AssignAgentTask` sent by other domains |
//! | `schema.rs` | the same as mutations |
//!
//! A failure that is not retried and has no `onFailure` step unwinds the instance: everything else in play
//! stops and the compensations of the completed steps run one at a time, most recent first, each as an
//! agent task; then `WorkflowFailed`.

pub mod approvals;
pub mod commands;
pub mod decide;
pub mod engine;
pub mod schema;
pub mod state;
pub mod timers;
