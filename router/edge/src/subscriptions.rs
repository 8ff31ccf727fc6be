//! What a credential, a client address and a connection may hold in subscriptions at once, counted by the
//! edge, which sees every subscription before the router does.
//!
//! The router pools the subscriptions of one credential onto one upstream connection per subgraph, so a
//! cap the subgraph applies per connection applies to the credential as a whole — and a subscription the
//! subgraph refuses there reaches its client as a bare `complete`, with nothing saying why (Hive Router
//! 0.2.19 turns the subgraph's coded `error` into that). The edge therefore counts first and answers a
//! subscription over a cap itself, with an `error` message coded `QUOTA_EXCEEDED`; the subgraph's own
//! per-connection cap is set above the per-credential one.
//!
//! A credential is the `Authorization` value (from the upgrade request, or else the `connection_init`
//! payload), counted by a keyed hash: the edge does not verify it — the subgraphs do — so a forged token
//! only ever spends its own allowance. Counts live in this process: each edge replica counts its own.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The caps, from the edge's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    pub per_connection: usize,
    pub per_credential: usize,
    pub per_client: usize,
    pub total: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Holder {
    Credential(u64),
    Client(IpAddr),
}

/// Every subscription the edge is relaying, counted per credential and per client address.
#[derive(Debug)]
pub struct Ledger {
    caps: Caps,
    keys: RandomState,
    counts: Mutex<Counts>,
}

#[derive(Default, Debug)]
struct Counts {
    total: usize,
    by: HashMap<Holder, usize>,
}

/// One admitted subscription: its place in the counts, given back when it is dropped (the subscription
/// completed, failed, or its connection ended).
#[derive(Debug)]
pub struct Lease {
    ledger: Arc<Ledger>,
    holders: [Holder; 2],
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut counts = self.ledger.counts.lock().expect("ledger lock");
        counts.total -= 1;
        for h in self.holders {
            if let Some(n) = counts.by.get_mut(&h) {
                *n -= 1;
                if *n == 0 {
                    counts.by.remove(&h);
                }
            }
        }
    }
}

impl Ledger {
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self { caps, keys: RandomState::new(), counts: Mutex::default() })
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// A lease for one more subscription of `credential` (empty when there is none yet) from `client`,
    /// on a connection already holding `on_connection`; or why not, for the client to read.
    pub fn admit(self: &Arc<Self>, credential: &str, client: IpAddr, on_connection: usize) -> Result<Lease, String> {
        let caps = self.caps;
        if on_connection >= caps.per_connection {
            return Err(format!("at most {} subscriptions per connection", caps.per_connection));
        }
        let holders = [Holder::Credential(self.keys.hash_one(credential)), Holder::Client(client)];
        let mut counts = self.counts.lock().expect("ledger lock");
        let held = |h: &Holder| counts.by.get(h).copied().unwrap_or(0);
        if held(&holders[0]) >= caps.per_credential {
            return Err(format!("at most {} subscriptions per token at once", caps.per_credential));
        }
        if held(&holders[1]) >= caps.per_client {
            return Err(format!("at most {} subscriptions per client address at once", caps.per_client));
        }
        if counts.total >= caps.total {
            return Err("the endpoint is at its subscription capacity; try again later".to_owned());
        }
        counts.total += 1;
        for h in holders {
            *counts.by.entry(h).or_default() += 1;
        }
        Ok(Lease { ledger: self.clone(), holders })
    }

    /// Subscriptions held now, in all.
    pub fn total(&self) -> usize {
        self.counts.lock().expect("ledger lock").total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_refuses_the_one_past_it_and_a_dropped_lease_frees_its_place() {
        let ledger = Ledger::new(Caps { per_connection: 3, per_credential: 2, per_client: 3, total: 4 });
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        assert!(ledger.admit("t", a, 3).unwrap_err().contains("per connection"));
        let first = ledger.admit("Bearer x", a, 0).unwrap();
        let _second = ledger.admit("Bearer x", a, 1).unwrap();
        assert!(ledger.admit("Bearer x", b, 0).unwrap_err().contains("per token"));
        let _other = ledger.admit("Bearer y", a, 0).unwrap();
        assert!(ledger.admit("Bearer z", a, 0).unwrap_err().contains("per client address"));
        let _fourth = ledger.admit("Bearer z", b, 0).unwrap();
        assert!(ledger.admit("Bearer w", b, 0).unwrap_err().contains("capacity"));
        drop(first);
        assert_eq!(ledger.total(), 3);
        let _again = ledger.admit("Bearer x", b, 0).unwrap();
        assert_eq!(ledger.total(), 4);
    }
}
