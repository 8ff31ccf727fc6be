//! Integration tests of the workflow subgraph against the real PostgreSQL, Redis and RabbitMQ.

mod crash;
mod definitions;
mod helpers;
mod history;
mod leases;
mod live;
mod process;
mod replay;
mod saga;
mod timers;
