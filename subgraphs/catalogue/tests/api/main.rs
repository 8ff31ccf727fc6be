//! Integration tests of the catalogue subgraph against the real PostgreSQL, Redis and RabbitMQ.

mod blueprints;
mod environments;
mod graph;
mod helpers;
mod isolation;
mod modules;
mod projects;
mod queries;
mod registry;
