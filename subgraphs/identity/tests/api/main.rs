//! Integration tests of the identity subgraph and token service against the real PostgreSQL and Redis,
//! one file per feature.

mod api_tokens;
mod bootstrap;
mod helpers;
mod oauth;
mod principals;
mod queries;
mod roles;
mod secrets;
