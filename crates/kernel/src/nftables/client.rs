//! [`Nftables`]: the socket that sends batches and asks about tables, sets
//! and elements.

use std::fs::File;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

use super::nfnl::{Attrs, Builder, Message};
use super::socket::{protocol, NfSocket};
use super::*;
use crate::Result;

/// A dump that the kernel flags as interrupted is retried this many times.
const DUMP_ATTEMPTS: usize = 5;

/// A NETLINK_NETFILTER socket for nf_tables requests, bound to the network
/// namespace it was opened in. Synchronous: each call sends its request and
/// reads until the kernel has answered it.
#[derive(Debug)]
pub struct Nftables {
    socket: NfSocket,
}

impl std::os::fd::AsFd for Nftables {
    /// The socket, for handing it to another process to close (the last close of a socket
    /// that committed deletions waits for an RCU grace period; see `berth_engine::reap`).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Nftables {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Nftables> {
        Ok(Nftables {
            socket: NfSocket::open("open nftables netlink socket")?,
        })
    }

    /// Opens a socket in the network namespace `netns` (see
    /// [`crate::netns::open_in`]).
    pub fn open_in(netns: &File) -> Result<Nftables> {
        crate::netns::open_in(netns, Nftables::open)?
    }

    /// Sends `batch` as one nfnetlink batch and waits until the kernel has
    /// answered every message. Either every operation was applied (`Ok`) or
    /// none was: the error is the first refused message's, with its errno
    /// and extended-ack text, and names the operation and set, e.g. "add 2
    /// elements to set inet berth masq4: no such file or directory (os error
    /// 2)" when the set does not exist. An empty batch sends nothing.
    pub fn send(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let socket = &mut self.socket;
        let super::batch::Encoded {
            bytes,
            header,
            labels,
        } = batch.encode(|| socket.next_seq())?;
        let op = describe(&labels);
        self.socket.send(&op, &bytes)?;
        let nacks = self
            .socket
            .wait_acks(&op, labels.iter().map(|(seq, _)| *seq), Some(header))?;
        if let Some(nack) = nacks.iter().find(|n| n.seq == header) {
            return Err(nack.clone().into_error(format!("commit {op}")));
        }
        for (seq, label) in labels {
            if let Some(nack) = nacks.iter().find(|n| n.seq == seq) {
                return Err(nack.clone().into_error(label));
            }
        }
        Ok(())
    }

    /// Whether table `family table` exists (`NFT_MSG_GETTABLE`).
    pub fn table_exists(&mut self, family: Family, table: &str) -> Result<bool> {
        check_name("table", table)?;
        let mut b = Builder::new(
            msg_type(NFT_MSG_GETTABLE),
            NLM_F_REQUEST | NLM_F_ACK,
            family.nfproto(),
            0,
        );
        b.put_str(NFTA_TABLE_NAME, table);
        let op = format!("get table {} {table}", family.name());
        self.exists(&op, b)
    }

    /// Whether set or map `set` exists in `family table` (`NFT_MSG_GETSET`);
    /// false as well when the table does not exist.
    pub fn set_exists(&mut self, family: Family, table: &str, set: &str) -> Result<bool> {
        check_name("table", table)?;
        check_name("set", set)?;
        let mut b = Builder::new(
            msg_type(NFT_MSG_GETSET),
            NLM_F_REQUEST | NLM_F_ACK,
            family.nfproto(),
            0,
        );
        b.put_str(NFTA_SET_TABLE, table).put_str(NFTA_SET_NAME, set);
        let op = format!("get {}", set_label(family, table, set));
        self.exists(&op, b)
    }

    fn exists(&mut self, op: &str, request: Builder) -> Result<bool> {
        let seq = self.socket.next_seq();
        match self.socket.request(op, &request.finish(seq), seq) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every element of `set`, as the kernel stores them
    /// (`NFT_MSG_GETSETELEM` dump): an interval set shows its start and
    /// interval-end elements; map data is included. For tests and
    /// diagnostics. A missing set or table is an error (`ENOENT`).
    pub fn elements(&mut self, family: Family, table: &str, set: &str) -> Result<Vec<Element>> {
        check_name("table", table)?;
        check_name("set", set)?;
        let op = format!("list elements of {}", set_label(family, table, set));
        for _ in 0..DUMP_ATTEMPTS {
            let mut b = Builder::new(
                msg_type(NFT_MSG_GETSETELEM),
                NLM_F_REQUEST | NLM_F_DUMP,
                family.nfproto(),
                0,
            );
            b.put_str(NFTA_SET_ELEM_LIST_TABLE, table);
            b.put_str(NFTA_SET_ELEM_LIST_SET, set);
            let seq = self.socket.next_seq();
            let mut out = Vec::new();
            let interrupted = self.socket.dump(&op, &b.finish(seq), seq, |msg| {
                parse_elements(&op, msg, &mut out)
            })?;
            if !interrupted {
                return Ok(out);
            }
        }
        Err(protocol(
            &op,
            "dump interrupted by concurrent changes, 5 times",
        ))
    }
}

impl Nftables {
    /// The packet count of the element with key `key` of every element of `keys` in set
    /// `set`, summed: its `counter` expression (sets declared with `counter`), which a
    /// lookup that matches the element increments. `None` when an element carries no
    /// counter. A missing element (or set) is an error with `ENOENT`. Elements are asked
    /// for 64 at a time (`NFT_MSG_GETSETELEM`, no dump: the kernel answers one message per
    /// element, then the acknowledgement).
    pub fn packets_of(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        keys: &[Vec<u8>],
    ) -> Result<Option<u64>> {
        check_name("table", table)?;
        check_name("set", set)?;
        let op = format!("read element counters of {}", set_label(family, table, set));
        let mut total = 0u64;
        for chunk in keys.chunks(64) {
            let mut b = Builder::new(
                msg_type(NFT_MSG_GETSETELEM),
                NLM_F_REQUEST | NLM_F_ACK,
                family.nfproto(),
                0,
            );
            b.put_str(NFTA_SET_ELEM_LIST_TABLE, table);
            b.put_str(NFTA_SET_ELEM_LIST_SET, set);
            b.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
            for key in chunk {
                b.nest(NFTA_LIST_ELEM);
                b.nest(NFTA_SET_ELEM_KEY).put(NFTA_DATA_VALUE, key).end();
                b.end();
            }
            b.end();
            let seq = self.socket.next_seq();
            let mut counted = 0usize;
            let mut missing_counter = false;
            self.socket.replies(&op, &b.finish(seq), seq, |msg| {
                if msg.kind != msg_type(NFT_MSG_NEWSETELEM) {
                    return Ok(());
                }
                let Some(list) = msg.attrs().get(NFTA_SET_ELEM_LIST_ELEMENTS) else {
                    return Ok(());
                };
                for (kind, elem) in Attrs(list) {
                    if kind != NFTA_LIST_ELEM {
                        continue;
                    }
                    counted += 1;
                    match element_packets(Attrs(elem)) {
                        Some(n) => total = total.saturating_add(n),
                        None => missing_counter = true,
                    }
                }
                Ok(())
            })?;
            if missing_counter || counted != chunk.len() {
                return Ok(None);
            }
        }
        Ok(Some(total))
    }
}

/// `NFTA_SET_ELEM_EXPR` (one expression) or `NFTA_SET_ELEM_EXPRESSIONS` (a list): the
/// packets of the element's `counter` expression.
fn element_packets(elem: Attrs<'_>) -> Option<u64> {
    let counter = |expr: &[u8]| -> Option<u64> {
        let expr = Attrs(expr);
        if expr.get_str(NFTA_EXPR_NAME)? != "counter" {
            return None;
        }
        let data = Attrs(expr.get(NFTA_EXPR_DATA)?);
        Some(u64::from_be_bytes(
            data.get(NFTA_COUNTER_PACKETS)?.try_into().ok()?,
        ))
    };
    if let Some(expr) = elem.get(NFTA_SET_ELEM_EXPR) {
        return counter(expr);
    }
    Attrs(elem.get(NFTA_SET_ELEM_EXPRESSIONS)?)
        .filter(|(k, _)| *k == NFTA_LIST_ELEM)
        .find_map(|(_, e)| counter(e))
}

fn msg_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

/// "nftables batch: add 1 element to set inet t m; destroy ..." (at most
/// three operations named).
fn describe(labels: &[(u32, String)]) -> String {
    let named: Vec<&str> = labels.iter().take(3).map(|(_, l)| l.as_str()).collect();
    let more = labels.len().saturating_sub(3);
    let tail = if more > 0 {
        format!("; {more} more")
    } else {
        String::new()
    };
    format!("nftables batch ({}{tail})", named.join("; "))
}

/// Appends the elements of one `NFT_MSG_NEWSETELEM` dump reply to `out`.
fn parse_elements(op: &str, msg: &Message<'_>, out: &mut Vec<Element>) -> Result<()> {
    if msg.kind != msg_type(NFT_MSG_NEWSETELEM) {
        return Err(protocol(
            op,
            format!("unexpected message type {:#x}", msg.kind),
        ));
    }
    let Some(list) = msg.attrs().get(NFTA_SET_ELEM_LIST_ELEMENTS) else {
        return Ok(());
    };
    for (kind, elem) in Attrs(list) {
        if kind != NFTA_LIST_ELEM {
            continue;
        }
        let attrs = Attrs(elem);
        let value = |kind| {
            attrs
                .get(kind)
                .and_then(|nested| Attrs(nested).get(NFTA_DATA_VALUE))
                .map(<[u8]>::to_vec)
        };
        // A catch-all element has no key; it cannot be programmed here.
        let Some(key) = value(NFTA_SET_ELEM_KEY) else {
            continue;
        };
        let flags = attrs.get_be32(NFTA_SET_ELEM_FLAGS).unwrap_or(0);
        out.push(Element {
            key,
            key_end: value(NFTA_SET_ELEM_KEY_END),
            data: value(NFTA_SET_ELEM_DATA),
            interval_end: flags & NFT_SET_ELEM_INTERVAL_END != 0,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_replies_parse_back_into_elements() {
        let elems = [
            Element::map(
                vec![6, 0, 0, 0, 0, 80, 0, 0],
                vec![10, 0, 0, 2, 0, 80, 0, 0],
            ),
            Element {
                interval_end: true,
                ..Element::key(vec![172, 19, 0, 0])
            },
            Element::range(vec![1; 8], vec![2; 8]),
        ];
        let mut b = Builder::new(msg_type(NFT_MSG_NEWSETELEM), 2, 1, 0);
        b.put_str(NFTA_SET_ELEM_LIST_TABLE, "t");
        b.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        for e in &elems {
            b.nest(NFTA_LIST_ELEM);
            b.nest(NFTA_SET_ELEM_KEY).put(NFTA_DATA_VALUE, &e.key).end();
            if let Some(end) = &e.key_end {
                b.nest(NFTA_SET_ELEM_KEY_END)
                    .put(NFTA_DATA_VALUE, end)
                    .end();
            }
            if let Some(data) = &e.data {
                b.nest(NFTA_SET_ELEM_DATA).put(NFTA_DATA_VALUE, data).end();
            }
            if e.interval_end {
                b.put_be32(NFTA_SET_ELEM_FLAGS, 1);
            }
            b.end();
        }
        // A catch-all element (flags 2, no key) is skipped.
        b.nest(NFTA_LIST_ELEM)
            .put_be32(NFTA_SET_ELEM_FLAGS, 2)
            .end();
        b.end();
        let bytes = b.finish(1);
        let (msgs, _) = super::super::nfnl::messages(&bytes);
        let mut out = Vec::new();
        parse_elements("x", &msgs[0], &mut out).unwrap();
        assert_eq!(out, elems);
        let wrong = Builder::new(msg_type(NFT_MSG_GETTABLE), 2, 1, 0).finish(1);
        let (msgs, _) = super::super::nfnl::messages(&wrong);
        assert!(parse_elements("x", &msgs[0], &mut out).is_err());
    }

    #[test]
    fn batch_description_names_the_first_operations() {
        let labels: Vec<(u32, String)> = (0..5).map(|i| (i, format!("op{i}"))).collect();
        assert_eq!(describe(&labels[..1]), "nftables batch (op0)");
        assert_eq!(describe(&labels), "nftables batch (op0; op1; op2; 2 more)");
    }

    #[test]
    fn missing_objects_are_errors_with_errno() {
        let err: crate::Error = super::super::socket::Nack {
            seq: 1,
            errno: libc::ENOENT,
            extack: None,
        }
        .into_error("add 1 element to set inet t nope");
        assert_eq!(
            err.to_string(),
            "add 1 element to set inet t nope: no such file or directory (os error 2)"
        );
    }
}
