//! Lineage's API tests, against a real PostgreSQL and RabbitMQ (each app its own throwaway database).

mod artifacts;
mod outputs;
