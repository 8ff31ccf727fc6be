//! Lineage's API tests, against a real PostgreSQL and RabbitMQ (each app its own throwaway database, and
//! its own folder for artifact bodies, gone with it).

mod artifacts;
mod bodies;
mod graph;
mod outputs;
mod redaction;
mod retention;

pub type App = test_support::TestApp<lineage::State>;

/// An app with the defaults, its bodies in its own folder, the sweeper stepped by the tests.
pub async fn spawn() -> App {
    spawn_with(|_| {}).await
}

/// [`spawn`], its configuration adjusted by `tune`.
pub async fn spawn_with(tune: impl FnOnce(&mut lineage::Config)) -> App {
    let builder = App::builder();
    let mut config = lineage::Config {
        artifact_store_dir: builder.dir.join("artifact-bodies").display().to_string(),
        artifact_sweep_interval_secs: 0,
        artifact_retention_interval_secs: 0,
        ..Default::default()
    };
    tune(&mut config);
    builder.start::<lineage::State>(&config).await
}
