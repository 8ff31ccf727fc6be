use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::State;

pub async fn run(_state: Arc<State>, _shutdown: CancellationToken) {}
