//! Integration tests of the workflow subgraph against the real PostgreSQL, Redis and RabbitMQ.

mod definitions;
mod helpers;
mod history;
mod leases;
mod process;
mod timers;
