//! Integration tests of the catalogue subgraph against the real PostgreSQL, Redis and RabbitMQ.
mod blueprints;
