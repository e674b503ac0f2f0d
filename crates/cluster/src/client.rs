//! The blocking client the doors use: networks, address claims, endpoint records.

use crate::error::from_etcd;
use crate::records::{Claim, EndpointRecord, HostRecord, NetworkRecord};
use crate::{keys, Config, Error, Result};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp,
};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// How long connecting and each request may take before the store counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Optimistic transactions retry this often when another host wrote in between.
const ATTEMPTS: usize = 16;

/// A connection to the cluster store.
pub struct Cluster {
    rt: tokio::runtime::Runtime,
    client: Client,
    config: Config,
}

/// Decodes one JSON record.
pub(crate) fn decode<T: DeserializeOwned>(store: &str, key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| Error::Corrupt {
        store: store.to_string(),
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialize")
}

pub(crate) fn options() -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT)
}

impl Cluster {
    /// Connects to the store of `config`.
    pub fn connect(config: &Config) -> Result<Cluster> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Invalid(format!("start the etcd client runtime: {e}")))?;
        let client = rt
            .block_on(Client::connect(&config.endpoints, Some(options())))
            .map_err(|e| from_etcd(&config.url, "connect", e))?;
        Ok(Cluster {
            rt,
            client,
            config: config.clone(),
        })
    }

    /// The settings this client was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn run<T>(
        &mut self,
        op: &str,
        f: impl FnOnce(
            Client,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = std::result::Result<T, etcd_client::Error>>>,
        >,
    ) -> Result<T> {
        let client = self.client.clone();
        let fut = f(client);
        // The client's own timeout bounds every request; this one bounds a hung connect.
        match self
            .rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT + CONNECT_TIMEOUT, fut).await })
        {
            Ok(r) => r.map_err(|e| from_etcd(&self.config.url, op, e)),
            Err(_) => Err(Error::Unreachable {
                store: self.config.url.clone(),
                detail: format!("{op}: timed out"),
            }),
        }
    }

    fn list<T: DeserializeOwned>(&mut self, prefix: String, op: &str) -> Result<(Vec<T>, i64)> {
        let resp = self.run(op, move |mut c| {
            Box::pin(async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await })
        })?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        let mut out = Vec::new();
        for kv in resp.kvs() {
            out.push(decode(&self.config.url, kv.key(), kv.value())?);
        }
        Ok((out, rev))
    }

    /// Every overlay network.
    pub fn networks(&mut self) -> Result<Vec<NetworkRecord>> {
        Ok(self.list(keys::networks(), "list networks")?.0)
    }

    /// Creates a network: `plan` sees every existing network and returns the new one (or
    /// refuses); the write succeeds only if no network changed since they were read.
    pub fn create_network(
        &mut self,
        mut plan: impl FnMut(&[NetworkRecord]) -> Result<NetworkRecord>,
    ) -> Result<NetworkRecord> {
        for _ in 0..ATTEMPTS {
            let (existing, rev) = self.list::<NetworkRecord>(keys::networks(), "list networks")?;
            let net = plan(&existing)?;
            let key = keys::network(&net.name);
            let txn = Txn::new()
                .when([
                    Compare::create_revision(key.clone(), CompareOp::Equal, 0),
                    Compare::mod_revision(keys::networks(), CompareOp::Less, rev + 1).with_prefix(),
                ])
                .and_then([TxnOp::put(key, encode(&net), None)]);
            let resp = self.run("create network", move |mut c| {
                Box::pin(async move { c.txn(txn).await })
            })?;
            if resp.succeeded() {
                return Ok(net);
            }
        }
        Err(Error::Conflict(
            "the cluster's networks kept changing while this one was created: try again".into(),
        ))
    }

    /// Every endpoint record of one network.
    pub fn endpoints(&mut self, network_id: &str) -> Result<Vec<EndpointRecord>> {
        Ok(self.list(keys::endpoints(network_id), "list endpoints")?.0)
    }

    /// Removes a network when no host has an endpoint on it (checked in the same
    /// transaction), with its address claims.
    pub fn remove_network(&mut self, net: &NetworkRecord) -> Result<()> {
        let eps = self.endpoints(&net.id)?;
        if !eps.is_empty() {
            return Err(in_use(net, &eps));
        }
        let txn = Txn::new()
            .when([
                Compare::create_revision(keys::endpoints(&net.id), CompareOp::Equal, 0)
                    .with_prefix(),
                Compare::value(keys::network(&net.name), CompareOp::Equal, encode(net)),
            ])
            .and_then([
                TxnOp::delete(keys::network(&net.name), None),
                TxnOp::delete(
                    keys::claims(&net.id),
                    Some(DeleteOptions::new().with_prefix()),
                ),
            ]);
        let resp = self.run("remove network", move |mut c| {
            Box::pin(async move { c.txn(txn).await })
        })?;
        if resp.succeeded() {
            return Ok(());
        }
        let eps = self.endpoints(&net.id)?;
        match eps.is_empty() {
            false => Err(in_use(net, &eps)),
            true => Err(Error::Conflict(format!(
                "network {} changed while it was being removed: try again",
                net.name
            ))),
        }
    }

    /// The lease of this host's registration, when its agent has registered it.
    pub fn host_lease(&mut self) -> Result<Option<(HostRecord, i64)>> {
        let key = keys::host(&self.config.host);
        let resp = self.run("look up this host", move |mut c| {
            Box::pin(async move { c.get(key, None).await })
        })?;
        match resp.kvs().first() {
            Some(kv) => Ok(Some((
                decode(&self.config.url, kv.key(), kv.value())?,
                kv.lease(),
            ))),
            None => Ok(None),
        }
    }

    /// Claims an address on network `(id, name)` for `claim` under `lease`: `wanted` when
    /// given (a conflict if taken), else what `choose` picks from the addresses in use,
    /// retried when another host claims it first.
    pub fn claim_address(
        &mut self,
        (network_id, network_name): (&str, &str),
        lease: i64,
        claim: &Claim,
        wanted: Option<IpAddr>,
        mut choose: impl FnMut(&BTreeSet<IpAddr>) -> Result<IpAddr>,
    ) -> Result<IpAddr> {
        for _ in 0..ATTEMPTS {
            let prefix = keys::claims(network_id);
            let p = prefix.clone();
            let resp = self.run("list address claims", move |mut c| {
                Box::pin(async move {
                    c.get(p, Some(GetOptions::new().with_prefix().with_keys_only()))
                        .await
                })
            })?;
            let used: BTreeSet<IpAddr> = resp
                .kvs()
                .iter()
                .filter_map(|kv| kv.key_str().ok()?.strip_prefix(&prefix)?.parse().ok())
                .collect();
            let addr = match wanted {
                Some(a) if used.contains(&a) => {
                    return Err(Error::Conflict(format!(
                        "address {a} is already in use on network {network_name}"
                    )))
                }
                Some(a) => a,
                None => choose(&used)?,
            };
            let key = keys::claim(network_id, addr);
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key,
                    encode(claim),
                    Some(PutOptions::new().with_lease(lease)),
                )]);
            let resp = self.run("claim an address", move |mut c| {
                Box::pin(async move { c.txn(txn).await })
            })?;
            if resp.succeeded() {
                return Ok(addr);
            }
            if wanted.is_some() {
                return Err(Error::Conflict(format!(
                    "address {addr} is already in use on network {network_name}"
                )));
            }
        }
        Err(Error::Conflict(format!(
            "could not claim an address on network {network_name}: other hosts kept taking them"
        )))
    }

    /// Releases an address if `claim` still holds it.
    pub fn release_address(&mut self, network_id: &str, addr: IpAddr, claim: &Claim) -> Result<()> {
        let key = keys::claim(network_id, addr);
        let txn = Txn::new()
            .when([Compare::value(key.clone(), CompareOp::Equal, encode(claim))])
            .and_then([TxnOp::delete(key, None)]);
        self.run("release an address", move |mut c| {
            Box::pin(async move { c.txn(txn).await })
        })
        .map(drop)
    }

    /// Writes an endpoint record under `lease`.
    pub fn publish_endpoint(&mut self, ep: &EndpointRecord, lease: i64) -> Result<()> {
        let key = keys::endpoint(&ep.network_id, &ep.id);
        let value = encode(ep);
        self.run("publish an endpoint", move |mut c| {
            Box::pin(async move {
                c.put(key, value, Some(PutOptions::new().with_lease(lease)))
                    .await
            })
        })
        .map(drop)
    }

    /// Deletes an endpoint record (absent is fine).
    pub fn withdraw_endpoint(&mut self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let key = keys::endpoint(network_id, endpoint_id);
        self.run("withdraw an endpoint", move |mut c| {
            Box::pin(async move { c.delete(key, None).await })
        })
        .map(drop)
    }
}

fn in_use(net: &NetworkRecord, eps: &[EndpointRecord]) -> Error {
    let hosts: BTreeSet<&str> = eps.iter().map(|e| e.host.as_str()).collect();
    Error::Conflict(format!(
        "network {} has {} endpoint(s) on host(s) {}: remove those containers first",
        net.name,
        eps.len(),
        hosts.into_iter().collect::<Vec<_>>().join(", ")
    ))
}
