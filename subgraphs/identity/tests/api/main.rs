//! Integration tests of the identity subgraph and token service against the real PostgreSQL and Redis.

mod helpers;
mod tokens;
