//! Integration tests of the governance subgraph against the real PostgreSQL, Redis and RabbitMQ.

mod approvals;
mod audit;
mod decisions;
mod exports;
mod helpers;
mod integrations;
mod isolation;
mod models;
mod policies;
mod usage;
