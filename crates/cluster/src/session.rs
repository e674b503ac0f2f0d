//! The agent's side: a registration under a lease kept alive, and the endpoint stream
//! (list, then watch from that revision, so no change is missed between the two).

use crate::client::{decode, encode, options};
use crate::error::from_etcd;
use crate::records::{Claim, EndpointRecord, HostRecord};
use crate::{keys, Config, Error, Result, LEASE_TTL};
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, LeaseKeepAliveStream, LeaseKeeper,
    PutOptions, Txn, TxnOp, WatchOptions, WatchStream, Watcher,
};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Keep-alives go out this often (a third of the TTL).
const KEEPALIVE_EVERY: Duration = Duration::from_secs((LEASE_TTL as u64) / 3);

/// A change of an endpoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Put(EndpointRecord),
    Delete {
        network_id: String,
        endpoint_id: String,
    },
}

/// A live registration of this host.
pub struct Session {
    rt: tokio::runtime::Runtime,
    client: Client,
    config: Config,
    lease: i64,
    keeper: LeaseKeeper,
    alive: LeaseKeepAliveStream,
    last_keepalive: Instant,
    watch: Option<(Watcher, WatchStream)>,
}

impl Session {
    /// Connects and registers this host with VTEP `vtep`, reusing the lease of a previous
    /// registration that is still alive (an agent restart then changes nothing for others).
    pub fn open(config: &Config, vtep: Ipv4Addr) -> Result<Session> {
        let url = config.url.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Invalid(format!("start the etcd client runtime: {e}")))?;
        let host_key = keys::host(&config.host);
        let record = encode(&HostRecord {
            name: config.host.clone(),
            vtep: vtep.into(),
        });
        let (client, lease, keeper, alive) = rt.block_on(async {
            let url = &url;
            let e = |op: &'static str| move |err| from_etcd(url, op, err);
            let mut client = Client::connect(&config.endpoints, Some(options()))
                .await
                .map_err(e("connect"))?;
            let previous = client
                .get(host_key.clone(), None)
                .await
                .map_err(e("look up this host"))?
                .kvs()
                .first()
                .map(|kv| kv.lease())
                .filter(|l| *l != 0);
            let mut lease = None;
            if let Some(id) = previous {
                let ttl = client
                    .lease_time_to_live(id, None)
                    .await
                    .map(|r| r.ttl())
                    .unwrap_or(-1);
                if ttl > 0 {
                    lease = Some(id);
                }
            }
            let lease = match lease {
                Some(l) => l,
                None => client
                    .lease_grant(LEASE_TTL, None)
                    .await
                    .map_err(e("grant a lease"))?
                    .id(),
            };
            let (mut keeper, alive) = client
                .lease_keep_alive(lease)
                .await
                .map_err(e("keep the lease alive"))?;
            keeper
                .keep_alive()
                .await
                .map_err(e("keep the lease alive"))?;
            client
                .put(host_key, record, Some(PutOptions::new().with_lease(lease)))
                .await
                .map_err(e("register this host"))?;
            Ok::<_, Error>((client, lease, keeper, alive))
        })?;
        Ok(Session {
            rt,
            client,
            config: config.clone(),
            lease,
            keeper,
            alive,
            last_keepalive: Instant::now(),
            watch: None,
        })
    }

    /// The lease this host's records live under.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Every endpoint record of every overlay network, and the revision they were read at.
    pub fn list(&mut self) -> Result<(Vec<EndpointRecord>, i64)> {
        let url = self.config.url.clone();
        let mut c = self.client.clone();
        let resp = self
            .rt
            .block_on(c.get(keys::all_endpoints(), Some(GetOptions::new().with_prefix())))
            .map_err(|e| from_etcd(&url, "list endpoints", e))?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        let mut out = Vec::new();
        for kv in resp.kvs() {
            out.push(decode(&url, kv.key(), kv.value())?);
        }
        Ok((out, rev))
    }

    /// Starts watching endpoint records from revision `from` (the list's revision + 1).
    pub fn watch(&mut self, from: i64) -> Result<()> {
        let url = self.config.url.clone();
        let mut c = self.client.clone();
        let w = self
            .rt
            .block_on(c.watch(
                keys::all_endpoints(),
                Some(WatchOptions::new().with_prefix().with_start_revision(from)),
            ))
            .map_err(|e| from_etcd(&url, "watch endpoints", e))?;
        self.watch = Some(w);
        Ok(())
    }

    /// Waits up to `wait` for endpoint changes, keeping the lease alive meanwhile. An error
    /// means the session is over (store gone, watch cancelled, lease lost): open a new one.
    pub fn next(&mut self, wait: Duration) -> Result<Vec<Event>> {
        let url = self.config.url.clone();
        if self.last_keepalive.elapsed() >= KEEPALIVE_EVERY {
            self.keepalive()?;
        }
        let until_keepalive = KEEPALIVE_EVERY.saturating_sub(self.last_keepalive.elapsed());
        let (_, stream) = self
            .watch
            .as_mut()
            .ok_or_else(|| Error::Invalid("watch before next".into()))?;
        let got = self.rt.block_on(async {
            tokio::time::timeout(wait.min(until_keepalive), stream.message()).await
        });
        let resp = match got {
            Err(_) => return Ok(Vec::new()),
            Ok(Err(e)) => return Err(from_etcd(&url, "watch endpoints", e)),
            Ok(Ok(None)) => {
                return Err(Error::Unreachable {
                    store: url,
                    detail: "the watch stream ended".into(),
                })
            }
            Ok(Ok(Some(r))) => r,
        };
        if resp.canceled() {
            return Err(Error::Request {
                store: url,
                op: "watch endpoints".into(),
                detail: format!("cancelled: {}", resp.cancel_reason()),
            });
        }
        let mut out = Vec::new();
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            match ev.event_type() {
                EventType::Put => out.push(Event::Put(decode(&url, kv.key(), kv.value())?)),
                EventType::Delete => {
                    let key = String::from_utf8_lossy(kv.key()).into_owned();
                    if let Some((net, ep)) = key
                        .strip_prefix(&keys::all_endpoints())
                        .and_then(|rest| rest.split_once('/'))
                    {
                        out.push(Event::Delete {
                            network_id: net.to_string(),
                            endpoint_id: ep.to_string(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn keepalive(&mut self) -> Result<()> {
        let url = self.config.url.clone();
        let (keeper, alive) = (&mut self.keeper, &mut self.alive);
        let ttl = self.rt.block_on(async {
            keeper.keep_alive().await?;
            let r = tokio::time::timeout(Duration::from_secs(3), alive.message()).await;
            Ok::<_, etcd_client::Error>(match r {
                Ok(Ok(Some(resp))) => Some(resp.ttl()),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(None)) | Err(_) => None,
            })
        });
        match ttl.map_err(|e| from_etcd(&url, "keep the lease alive", e))? {
            Some(t) if t > 0 => {
                self.last_keepalive = Instant::now();
                Ok(())
            }
            Some(_) => Err(Error::Request {
                store: url,
                op: "keep the lease alive".into(),
                detail: "the lease expired".into(),
            }),
            None => Err(Error::Unreachable {
                store: url,
                detail: "no keep-alive answer".into(),
            }),
        }
    }

    /// Deletes one of this host's endpoint records and its address claim (left behind when
    /// a container was removed while the store was unreachable).
    pub fn withdraw(&mut self, ep: &EndpointRecord, claim: &Claim) -> Result<()> {
        let url = self.config.url.clone();
        let ckey = keys::claim(&ep.network_id, ep.ip);
        let txn = Txn::new()
            .when([Compare::value(
                ckey.clone(),
                CompareOp::Equal,
                encode(claim),
            )])
            .and_then([TxnOp::delete(ckey, None)]);
        let mut c = self.client.clone();
        self.rt
            .block_on(async {
                c.delete(keys::endpoint(&ep.network_id, &ep.id), None)
                    .await?;
                c.txn(txn).await
            })
            .map_err(|e| from_etcd(&url, "withdraw an endpoint", e))
            .map(drop)
    }

    /// Puts this host's own endpoints (and their address claims) back under the current
    /// lease, after a restart or a lost lease. Returns one message per endpoint that could
    /// not be restored (its address was claimed by another host meanwhile).
    pub fn republish(&mut self, endpoints: &[(EndpointRecord, Claim)]) -> Result<Vec<String>> {
        let url = self.config.url.clone();
        let mut problems = Vec::new();
        for (ep, claim) in endpoints {
            let ckey = keys::claim(&ep.network_id, ep.ip);
            let lease = Some(PutOptions::new().with_lease(self.lease));
            let put = [
                TxnOp::put(ckey.clone(), encode(claim), lease.clone()),
                TxnOp::put(keys::endpoint(&ep.network_id, &ep.id), encode(ep), lease),
            ];
            let mut ok = false;
            for cmp in [
                Compare::create_revision(ckey.clone(), CompareOp::Equal, 0),
                Compare::value(ckey.clone(), CompareOp::Equal, encode(claim)),
            ] {
                let txn = Txn::new().when([cmp]).and_then(put.clone());
                let mut c = self.client.clone();
                let r = self
                    .rt
                    .block_on(c.txn(txn))
                    .map_err(|e| from_etcd(&url, "republish an endpoint", e))?;
                if r.succeeded() {
                    ok = true;
                    break;
                }
            }
            if !ok {
                problems.push(format!(
                    "container {} on network {}: address {} is now claimed by another host",
                    ep.container_name, ep.network_id, ep.ip
                ));
            }
        }
        Ok(problems)
    }
}
