//! Every limit the server applies to what arrives from the network, in one place, each with a
//! safe default. docs/SECURITY.md lists them; a new limit belongs here.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use coper_shared::decide::RequestLimits;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest WebSocket message a kiosk may send. A message beyond it ends the session
    /// before it is held whole (a day of offline bookings is a few kilobytes).
    pub sync_message_bytes: usize,
    /// Sync connections that have not answered the challenge yet, in total.
    pub unauthenticated_syncs: usize,
    /// Sync connections from one address (a partner office's kiosks share its address).
    pub syncs_per_address: usize,
    /// How long a kiosk has to answer the challenge.
    pub auth_timeout: Duration,
    /// What one request may carry, and how many one batch may hold.
    pub requests: RequestLimits,
    /// How long a client may take to send a request's headers, and how long an idle
    /// connection waits for its next request, before it is closed.
    pub http_header_read: Duration,
    /// How long a client may take to send a request's body, from its headers on.
    pub http_body: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            sync_message_bytes: 1 << 20,
            unauthenticated_syncs: 32,
            syncs_per_address: 32,
            auth_timeout: Duration::from_secs(10),
            requests: RequestLimits::default(),
            http_header_read: Duration::from_secs(10),
            http_body: Duration::from_secs(60),
        }
    }
}

/// Admission of sync connections: at most [`Limits::unauthenticated_syncs`] waiting for their
/// challenge, at most [`Limits::syncs_per_address`] from one address.
#[derive(Debug)]
pub struct SyncGate {
    unauthenticated: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
}

/// A sync connection let in: it holds its address's place for its lifetime, and a place among
/// the unauthenticated until [`Admitted::authenticated`].
#[derive(Debug)]
pub struct Admitted {
    unauthenticated: Option<OwnedSemaphorePermit>,
    address: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl SyncGate {
    pub fn new(limits: &Limits) -> Self {
        Self {
            unauthenticated: Arc::new(Semaphore::new(limits.unauthenticated_syncs)),
            per_address: Arc::default(),
            max_per_address: limits.syncs_per_address,
        }
    }

    /// Let a connection from `address` in, or `None` when a limit is reached.
    pub fn admit(&self, address: IpAddr) -> Option<Admitted> {
        let unauthenticated = self.unauthenticated.clone().try_acquire_owned().ok()?;
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(address).or_default();
        if *count >= self.max_per_address {
            return None;
        }
        *count += 1;
        Some(Admitted {
            unauthenticated: Some(unauthenticated),
            address,
            per_address: self.per_address.clone(),
        })
    }
}

impl Admitted {
    /// The kiosk proved who it is: its place among the unauthenticated is free again.
    pub fn authenticated(&mut self) {
        self.unauthenticated = None;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_counts_waiting_and_per_address_connections() {
        let gate = SyncGate::new(&Limits {
            unauthenticated_syncs: 2,
            syncs_per_address: 2,
            ..Limits::default()
        });
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        let mut first = gate.admit(here).unwrap();
        let _second = gate.admit(there).unwrap();
        assert!(gate.admit(there).is_none(), "two wait for their challenge");
        first.authenticated();
        let mut third = gate.admit(here).unwrap();
        third.authenticated();
        assert!(gate.admit(here).is_none(), "two from one address");
        drop(first);
        assert!(
            gate.admit(here).is_some(),
            "a closed connection frees its place"
        );
    }
}
