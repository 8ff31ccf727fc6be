//! Integration tests of the tenancy subgraph against the real PostgreSQL, Redis and RabbitMQ.

mod auth;
mod events;
mod flags;
mod hardening;
mod helpers;
mod isolation;
mod lifecycle;
mod live;
mod queries;
mod quotas;
