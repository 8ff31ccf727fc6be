//! RabbitMQ: one shared connection per process, reopened on demand, and the topology every domain uses.
//!
//! Events go to the durable topic exchange [`EXCHANGE`] with routing key `<domain>.<eventType>`, as persistent
//! JSON messages carrying the headers `cs-tenant-id` and `cs-schema-version`.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::envelope::Envelope;

/// The topic exchange all domain events and commands travel through.
pub const EXCHANGE: &str = "cp.events";

pub fn routing_key(domain: &str, event_type: &str) -> String {
    format!("{domain}.{event_type}")
}

pub struct Broker {
    url: SecretString,
    conn: Mutex<Option<Arc<Connection>>>,
}

impl Broker {
    /// Does not connect yet: a broker that is down at start-up must not stop the subgraph from serving.
    pub fn new(url: SecretString) -> Self {
        Self { url, conn: Mutex::new(None) }
    }

    /// The shared connection, reopened if it was lost.
    pub async fn connection(&self) -> anyhow::Result<Arc<Connection>> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.status().connected() {
                return Ok(conn.clone());
            }
        }
        *slot = None;
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio)
            .with_connection_name("control-plane".into());
        let conn = tokio::time::timeout(Duration::from_secs(5), Connection::connect(self.url.expose_secret(), props))
            .await
            .map_err(|_| anyhow::anyhow!("timed out connecting to RabbitMQ"))??;
        let conn = Arc::new(conn);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// A new channel in publisher-confirm mode, with the events exchange declared.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let conn = self.connection().await?;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        ch.exchange_declare(
            EXCHANGE,
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
        Ok(ch)
    }

    /// For `/health/ready`: connected, or able to reconnect within two seconds.
    pub async fn is_ready(&self) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(2), self.connection()).await, Ok(Ok(_)))
    }
}

/// Message properties for an envelope: persistent JSON, ids and the `cs-*` headers.
pub fn properties(envelope: &Envelope, schema_version: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("cs-tenant-id".into(), AMQPValue::LongString(LongString::from(envelope.tenant_id.as_str())));
    headers.insert("cs-schema-version".into(), AMQPValue::LongUInt(schema_version));
    if let Some(actor) = &envelope.actor {
        headers.insert("cs-actor".into(), AMQPValue::LongString(LongString::from(actor.as_str())));
    }
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_delivery_mode(2)
        .with_message_id(ShortString::from(envelope.event_id.as_str()))
        .with_correlation_id(ShortString::from(envelope.correlation_id.as_str()))
        .with_type(ShortString::from(envelope.event_type.as_str()))
        .with_timestamp(envelope.occurred_at.timestamp().max(0) as u64)
        .with_headers(headers)
}

/// The `cs-actor` header of a message, if it has one.
pub fn actor(headers: Option<&FieldTable>) -> Option<String> {
    match headers?.inner().get("cs-actor")? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// RabbitMQ's management API (`http://user:password@host:15672`), for provisioning broker users.
pub struct Management {
    base: reqwest::Url,
    http: reqwest::Client,
}

impl Management {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(url)?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { base, http })
    }

    /// `/api/<segments…>`, each segment percent-encoded (a vhost `/` is `%2F`), without the credentials.
    fn url(&self, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
        let mut url = self.base.clone();
        url.set_username("").ok();
        url.set_password(None).ok();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("not a management API base URL: {}", self.base))?
            .pop_if_empty()
            .push("api")
            .extend(segments);
        Ok(url)
    }

    /// Sends `request`, authenticated; an answer that is not a success is an error naming `what`.
    async fn send(&self, request: reqwest::RequestBuilder, what: &[&str]) -> anyhow::Result<reqwest::Response> {
        let resp = request.basic_auth(self.base.username(), self.base.password()).send().await?;
        anyhow::ensure!(resp.status().is_success(), "RabbitMQ management /api/{}: {}", what.join("/"), resp.status());
        Ok(resp)
    }

    async fn put(&self, segments: &[&str], body: serde_json::Value) -> anyhow::Result<()> {
        self.send(self.http.put(self.url(segments)?).json(&body), segments).await.map(drop)
    }

    async fn delete(&self, segments: &[&str]) -> anyhow::Result<()> {
        self.send(self.http.delete(self.url(segments)?), segments).await.map(drop)
    }

    /// The names of `vhost`'s queues (`kind` `queues`) or exchanges (`exchanges`).
    async fn names(&self, kind: &str, vhost: &str) -> anyhow::Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Named {
            name: String,
        }
        let segments = [kind, vhost];
        let resp = self.send(self.http.get(self.url(&segments)?), &segments).await?;
        Ok(resp.json::<Vec<Named>>().await?.into_iter().map(|n| n.name).collect())
    }

    /// Deletes `vhost`'s queues and exchanges whose names start with `prefix`; how many of each.
    pub async fn delete_prefixed(&self, vhost: &str, prefix: &str) -> anyhow::Result<(usize, usize)> {
        let mut deleted = (0, 0);
        for queue in self.names("queues", vhost).await?.into_iter().filter(|n| n.starts_with(prefix)) {
            self.delete(&["queues", vhost, &queue]).await?;
            deleted.0 += 1;
        }
        for exchange in self.names("exchanges", vhost).await?.into_iter().filter(|n| n.starts_with(prefix)) {
            self.delete(&["exchanges", vhost, &exchange]).await?;
            deleted.1 += 1;
        }
        Ok(deleted)
    }

    /// Creates `vhost` if it is not there, and gives the management user (the broker's admin) every
    /// permission in it. A vhost is a broker of its own: its exchanges, queues and bindings are apart from
    /// every other vhost's.
    pub async fn ensure_vhost(&self, vhost: &str) -> anyhow::Result<()> {
        self.put(&["vhosts", vhost], serde_json::json!({})).await?;
        let all = serde_json::json!({ "configure": ".*", "write": ".*", "read": ".*" });
        self.put(&["permissions", vhost, self.base.username()], all).await
    }

    /// Creates (or updates) `cp_<domain>`, the broker user of one subgraph: it may use `vhost`, but on
    /// the events exchange it may publish only routing keys of its own domain (`<domain>.…`), so a
    /// compromised subgraph cannot forge another domain's events or a command addressed to another domain.
    /// Returns the user name.
    pub async fn provision_domain_user(&self, domain: &str, password: &str, vhost: &str) -> anyhow::Result<String> {
        anyhow::ensure!(
            !domain.is_empty() && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "a domain name is letters, digits, - and _"
        );
        let user = format!("cp_{domain}");
        self.put(&["users", &user], serde_json::json!({ "password": password, "tags": "" })).await?;
        // Its own queues and exchanges (`<domain>.…`), the events exchange and its listeners' server-named
        // queues; not the default exchange, through which anything could be sent to any queue (another
        // domain's command queue, say).
        let own = format!("^(cp\\.events|{domain}\\..*|amq\\.gen-.*)$");
        self.put(&["permissions", vhost, &user], serde_json::json!({ "configure": own, "write": own, "read": own }))
            .await?;
        self.put(
            &["topic-permissions", vhost, &user],
            serde_json::json!({ "exchange": EXCHANGE, "write": format!("^{domain}\\."), "read": ".*" }),
        )
        .await?;
        Ok(user)
    }

    /// Deletes `vhost` with everything in it.
    pub async fn delete_vhost(&self, vhost: &str) -> anyhow::Result<()> {
        self.delete(&["vhosts", vhost]).await
    }

    pub async fn delete_user(&self, user: &str) -> anyhow::Result<()> {
        self.delete(&["users", user]).await
    }
}

#[cfg(test)]
mod tests {
    use lapin::options::BasicPublishOptions;

    use super::*;

    /// Whether `queue` exists in `ch`'s vhost (a passive declare; a missing queue closes the channel).
    async fn exists(ch: &Channel, queue: &str) -> bool {
        let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
        ch.queue_declare(queue, passive, FieldTable::default()).await.is_ok()
    }

    #[tokio::test]
    async fn a_subgraphs_broker_user_publishes_only_under_its_own_domain() {
        let mgmt = Management::new("http://guest:guest@127.0.0.1:15672").unwrap();
        let domain = format!("tperm{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let password = uuid::Uuid::new_v4().simple().to_string();
        // In a vhost of the test's own, as the dev stack is in its own: one the admin may use too.
        let vhost = format!("t-{domain}");
        mgmt.ensure_vhost(&vhost).await.expect("management API");
        let user = mgmt.provision_domain_user(&domain, &password, &vhost).await.expect("management API");
        let broker = Broker::new(format!("amqp://{user}:{password}@127.0.0.1:5672/{vhost}").into());
        let publish = |key: String| {
            let broker = &broker;
            async move {
                let ch = broker.channel().await?;
                let c = ch
                    .basic_publish(EXCHANGE, &key, BasicPublishOptions::default(), b"{}", BasicProperties::default())
                    .await?
                    .await?;
                anyhow::Ok(c)
            }
        };
        assert!(publish(format!("{domain}.SomethingHappened")).await.is_ok(), "its own domain");
        for forged in ["identity.ApiTokenRevoked", "tenancy.ProvisionTenant"] {
            let err = publish(forged.to_owned()).await.expect_err(forged);
            assert!(format!("{err:#}").contains("ACCESS_REFUSED"), "{forged}: {err:#}");
        }
        // Nor straight into another domain's command queue through the default exchange.
        let ch = broker.channel().await.unwrap();
        let sent = async {
            ch.basic_publish("", "tenancy.commands", BasicPublishOptions::default(), b"{}", BasicProperties::default())
                .await?
                .await?;
            anyhow::Ok(())
        };
        let err = sent.await.expect_err("the default exchange");
        assert!(format!("{err:#}").contains("ACCESS_REFUSED"), "{err:#}");
        // Yet its own consumers' queues — retries and dead letters included — declare fine under it.
        let spec = crate::consumer::ConsumerSpec {
            queue: format!("{domain}.commands"),
            bindings: vec![format!("{domain}.DoSomething")],
            retry: crate::consumer::RetryPolicy::default(),
            prefetch: 1,
        };
        let ch = broker.channel().await.unwrap();
        spec.declare(&ch).await.expect("a domain user declares its own consumer's queues");
        let admin = Broker::new(format!("amqp://guest:guest@127.0.0.1:5672/{vhost}").into()).channel().await.unwrap();
        let queues = std::iter::once(spec.queue.clone())
            .chain((1..=spec.retry.retries).map(|n| spec.retry_queue(n)))
            .chain(std::iter::once(spec.dead_letter_queue()));
        for q in queues {
            assert!(exists(&admin, &q).await, "{q} is in the test's vhost");
        }
        // Nothing of it reached the default vhost.
        let default = Broker::new("amqp://guest:guest@127.0.0.1:5672/%2f".to_owned().into()).channel().await.unwrap();
        assert!(!exists(&default, &spec.queue).await, "the queue is not in the default vhost");
        // What the dev stack's provisioning does with what it left on the default vhost before it had its own.
        let (queues, exchanges) = mgmt.delete_prefixed(&vhost, &format!("{domain}.")).await.unwrap();
        assert_eq!((queues, exchanges), (spec.retry.retries as usize + 2, 1), "its queues and republish exchange");
        assert!(!exists(&admin, &spec.queue).await, "deleted");
        mgmt.delete_vhost(&vhost).await.unwrap();
        mgmt.delete_user(&user).await.unwrap();
    }
}
