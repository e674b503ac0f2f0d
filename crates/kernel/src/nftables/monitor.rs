//! [`Monitor`]: nf_tables change notifications (`NFNLGRP_NFTABLES`) about
//! one table, like `nft monitor` filtered to that table.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use super::nfnl::{self, Message};
use super::socket::NfSocket;
use super::*;
use crate::{Error, Result};

/// `NFNLGRP_NFTABLES`.
const NFNLGRP_NFTABLES: u32 = 7;
/// Receive buffer asked for, so a burst (a flushed ruleset) is not lost.
const RCVBUF: usize = 4 * 1024 * 1024;

/// A change to the watched table, as the kernel announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The table was deleted (`nft flush ruleset`, `nft delete table`).
    TableDeleted,
    /// A chain of the table was deleted.
    ChainDeleted(String),
    /// A rule was deleted from `chain` (`nft flush chain`, `delete rule`).
    RuleDeleted {
        /// The chain the rule was in.
        chain: String,
    },
    /// A named set or map was deleted (nft's anonymous sets are [`Change::Other`]).
    SetDeleted(String),
    /// Elements were deleted from `set`.
    ElementsDeleted {
        /// The set or map.
        set: String,
    },
    /// Anything else about this table: something was added or replaced.
    Other,
    /// The socket's receive buffer overflowed and notifications were lost
    /// (`ENOBUFS`): what happened is unknown, check the whole table.
    Lost,
}

/// Subscribes to nf_tables notifications and reports those about one table
/// (family and name), in the namespace of the thread that opened it.
///
/// Each notification becomes one [`Change`]; a change identical to the one
/// just before it in the same datagram is reported once (a flushed chain of
/// 50 rules is one `RuleDeleted`). [`Monitor::next`] blocks, optionally with a
/// timeout; the monitor is also an fd ([`AsRawFd`]) that becomes readable
/// when notifications arrive, for callers that poll several sources.
#[derive(Debug)]
pub struct Monitor {
    socket: NfSocket,
    family: Family,
    table: String,
    pending: VecDeque<Change>,
}

impl Monitor {
    /// Subscribes in the calling thread's network namespace. Only changes
    /// committed after this returns are reported.
    pub fn open(family: Family, table: &str) -> Result<Monitor> {
        check_name("table", table)?;
        let op = format!("monitor nftables table {} {table}", family.name());
        let socket = NfSocket::open(&op)?;
        let raw = socket.socket();
        raw.add_membership(NFNLGRP_NFTABLES)
            .map_err(|e| Error::io(format!("{op}: join NFNLGRP_NFTABLES"), e))?;
        // Best effort: the default buffer holds a few hundred notifications.
        let _ = raw.set_rx_buf_sz(RCVBUF);
        raw.set_non_blocking(true)
            .map_err(|e| Error::io(format!("{op}: set non-blocking"), e))?;
        Ok(Monitor {
            socket,
            family,
            table: table.to_string(),
            pending: VecDeque::new(),
        })
    }

    /// [`Monitor::open`] in the network namespace `netns`.
    pub fn open_in(netns: &File, family: Family, table: &str) -> Result<Monitor> {
        let table = table.to_string();
        crate::netns::run_in(netns, move || Monitor::open(family, &table))?
    }

    /// The next change to the table. Waits at most `timeout` (`None`: for
    /// ever) and returns `Ok(None)` if nothing about the table arrived.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Change>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Ok(Some(change));
            }
            let wait = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => Some(left),
                    None => return Ok(None),
                },
            };
            if !self.wait_readable(wait)? {
                return Ok(None);
            }
            match self.socket.recv() {
                Ok(datagram) => {
                    let (msgs, malformed) = nfnl::messages(datagram);
                    let mut changes: Vec<Change> = Vec::new();
                    for msg in &msgs {
                        if let Some(change) = classify(msg, self.family, &self.table) {
                            if changes.last() != Some(&change) {
                                changes.push(change);
                            }
                        }
                    }
                    self.pending.extend(changes);
                    if let Some(detail) = malformed {
                        tracing::debug!(detail, "malformed nftables notification");
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Ok(Some(Change::Lost));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("monitor nftables table {}: receive", self.table),
                        e,
                    ))
                }
            }
        }
    }

    /// Polls the socket; false on timeout.
    fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool> {
        let millis = match timeout {
            None => -1,
            // Round up, so a short timeout does not become a busy loop.
            Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
        };
        let mut fd = libc::pollfd {
            fd: self.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: fd points to one valid pollfd that lives across the call,
        // and the count passed is 1.
        let rc = unsafe { libc::poll(&mut fd, 1, millis) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(true); // recv then reports WouldBlock; loop again
            }
            return Err(Error::io("monitor nftables: poll", err));
        }
        Ok(rc > 0)
    }
}

impl AsRawFd for Monitor {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.socket().as_raw_fd()
    }
}

impl AsFd for Monitor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd belongs to the socket owned by self, so it stays
        // open for as long as the returned borrow of self.
        unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}

/// What notification `msg` means for table `family table`, if it is about it.
fn classify(msg: &Message<'_>, family: Family, table: &str) -> Option<Change> {
    if msg.kind >> 8 != NFNL_SUBSYS_NFTABLES || msg.family() != Some(family.nfproto()) {
        return None;
    }
    let attrs = msg.attrs();
    // Attribute 1 is the table name in table, chain, rule, set and element
    // notifications; generation notifications (NEWGEN) have no table.
    if attrs.get_str(NFTA_TABLE_NAME).as_deref() != Some(table) {
        return None;
    }
    let name = |kind| attrs.get_str(kind).unwrap_or_default();
    Some(match msg.kind & 0xff {
        NFT_MSG_DELTABLE | NFT_MSG_DESTROYTABLE => Change::TableDeleted,
        NFT_MSG_DELCHAIN | NFT_MSG_DESTROYCHAIN => Change::ChainDeleted(name(NFTA_CHAIN_NAME)),
        NFT_MSG_DELRULE | NFT_MSG_DESTROYRULE => Change::RuleDeleted {
            chain: name(NFTA_RULE_CHAIN),
        },
        NFT_MSG_DELSET | NFT_MSG_DESTROYSET => {
            let flags = attrs.get_be32(NFTA_SET_FLAGS).unwrap_or(0);
            if flags & NFT_SET_ANONYMOUS != 0 {
                Change::Other
            } else {
                Change::SetDeleted(name(NFTA_SET_NAME))
            }
        }
        NFT_MSG_DELSETELEM | NFT_MSG_DESTROYSETELEM => Change::ElementsDeleted {
            set: name(NFTA_SET_ELEM_LIST_SET),
        },
        _ => Change::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::super::nfnl::{messages, Builder};
    use super::*;

    fn event(msg: u16, family: u8, attrs: &[(u16, &str)], set_flags: Option<u32>) -> Vec<u8> {
        let mut b = Builder::new((NFNL_SUBSYS_NFTABLES << 8) | msg, 0, family, 0);
        for (kind, value) in attrs {
            b.put_str(*kind, value);
        }
        if let Some(flags) = set_flags {
            b.put_be32(NFTA_SET_FLAGS, flags);
        }
        b.finish(0)
    }

    fn classify_one(bytes: &[u8]) -> Option<Change> {
        let (msgs, _) = messages(bytes);
        classify(&msgs[0], Family::Inet, "berth")
    }

    #[test]
    fn notifications_about_the_table_are_classified() {
        let inet = Family::Inet.nfproto();
        let t = (1, "berth");
        assert_eq!(
            classify_one(&event(NFT_MSG_DELTABLE, inet, &[t], None)),
            Some(Change::TableDeleted)
        );
        assert_eq!(
            classify_one(&event(NFT_MSG_DELCHAIN, inet, &[t, (3, "forward")], None)),
            Some(Change::ChainDeleted("forward".into()))
        );
        assert_eq!(
            classify_one(&event(NFT_MSG_DELRULE, inet, &[t, (2, "forward")], None)),
            Some(Change::RuleDeleted {
                chain: "forward".into()
            })
        );
        assert_eq!(
            classify_one(&event(NFT_MSG_DELSET, inet, &[t, (2, "masq4")], Some(0))),
            Some(Change::SetDeleted("masq4".into()))
        );
        assert_eq!(
            classify_one(&event(NFT_MSG_DELSET, inet, &[t, (2, "__set0")], Some(3))),
            Some(Change::Other)
        );
        assert_eq!(
            classify_one(&event(
                NFT_MSG_DESTROYSETELEM,
                inet,
                &[t, (2, "bridges")],
                None
            )),
            Some(Change::ElementsDeleted {
                set: "bridges".into()
            })
        );
        assert_eq!(
            classify_one(&event(
                6, /* NEWRULE */
                inet,
                &[t, (2, "forward")],
                None
            )),
            Some(Change::Other)
        );
    }

    #[test]
    fn other_tables_families_and_generations_are_ignored() {
        let inet = Family::Inet.nfproto();
        assert_eq!(
            classify_one(&event(NFT_MSG_DELTABLE, inet, &[(1, "filter")], None)),
            None
        );
        assert_eq!(
            classify_one(&event(NFT_MSG_DELTABLE, 2, &[(1, "berth")], None)),
            None
        );
        // NEWGEN (15): attribute 1 is a be32 generation id, not a name.
        let mut b = Builder::new((NFNL_SUBSYS_NFTABLES << 8) | 15, 0, 0, 0);
        b.put_be32(1, 7);
        assert_eq!(classify_one(&b.finish(0)), None);
        // ctnetlink events are not nf_tables events.
        let b = Builder::new((1 << 8) | NFT_MSG_DELTABLE, 0, inet, 0);
        assert_eq!(classify_one(&b.finish(0)), None);
    }
}
