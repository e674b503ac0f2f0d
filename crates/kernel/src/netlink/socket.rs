//! The NETLINK_ROUTE socket and the request/acknowledgement exchange.
//!
//! Every request carries a fresh sequence number. A change request asks for
//! an acknowledgement (`NLM_F_ACK`) and is complete only when the kernel's
//! `NLMSG_ERROR` for that sequence number arrives (code 0 = ACK, negative =
//! typed errno). A dump is complete at `NLMSG_DONE`. Messages that carry
//! another sequence number (left over from an aborted exchange) are skipped;
//! messages not sent by the kernel (port 0) are ignored.

use std::fs::File;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLMSG_DONE, NLMSG_ERROR,
    NLM_F_ACK, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::{Error, Result};

/// Size of the receive buffer; grown when the kernel announces a larger
/// datagram.
const RECV_BUF: usize = 64 * 1024;
/// A dump that the kernel flags as interrupted (the table changed while it
/// was being read) is retried this many times.
const DUMP_ATTEMPTS: usize = 5;
/// `NLMSGERR_ATTR_MSG`: the extended-ack text attribute.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;

/// One NETLINK_ROUTE socket, bound to the network namespace it was created
/// in, with its own sequence counter. Synchronous: every call sends one
/// request and reads until that request is answered.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open() -> Result<Netlink> {
        let op = "open rtnetlink socket";
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io(op, e))?;
        socket.bind_auto().map_err(|e| Error::io(op, e))?;
        // Ask for error strings (extended ack) and for errors that do not
        // echo the whole request back, so the strings are easy to find.
        socket.set_ext_ack(true).map_err(|e| Error::io(op, e))?;
        socket.set_cap_ack(true).map_err(|e| Error::io(op, e))?;
        Ok(Netlink {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Opens a socket in the network namespace `netns`. The calling thread
    /// enters `netns` for the `socket` call and returns (see
    /// [`crate::netns::open_in`]); a netlink socket stays bound to the
    /// namespace it was created in, whichever thread uses it later.
    pub fn open_in(netns: &File) -> Result<Netlink> {
        crate::netns::open_in(netns, Netlink::open)?
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }

    /// Sends `msg` as a change request with `flags` (plus `NLM_F_REQUEST |
    /// NLM_F_ACK`) and waits for the acknowledgement. Returns any replies
    /// that came before it (for `RTM_GET*` by name/index).
    pub(crate) fn request(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.exchange(op, msg, flags | NLM_F_REQUEST | NLM_F_ACK, false)
    }

    /// Sends `msg` as a dump request and collects every reply up to
    /// `NLMSG_DONE`. Retries when the kernel marks the dump interrupted.
    pub(crate) fn dump(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut attempt = 1;
        loop {
            match self.exchange(op, msg.clone(), NLM_F_REQUEST | NLM_F_DUMP, true) {
                Err(Error::Protocol { ref detail, .. })
                    if detail == DUMP_INTERRUPTED && attempt < DUMP_ATTEMPTS =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn exchange(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
        dump: bool,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.next_seq();
        let bytes = encode(msg, flags, seq);
        let kernel = SocketAddr::new(0, 0);
        let sent = self
            .socket
            .send_to(&bytes, &kernel, 0)
            .map_err(|e| Error::io(format!("{op}: send netlink request"), e))?;
        if sent != bytes.len() {
            return Err(protocol(
                op,
                format!("short send: {sent} of {} bytes", bytes.len()),
            ));
        }
        let mut exchange = Exchange::new(op, seq, dump);
        loop {
            self.receive(op)?;
            if exchange.feed(&self.buf) {
                return exchange.finish();
            }
        }
    }

    /// Reads one datagram into `self.buf`, growing it if the kernel has a
    /// larger one queued.
    fn receive(&mut self, op: &str) -> Result<()> {
        loop {
            self.buf.clear();
            let (len, _) = self
                .socket
                .recv_from(&mut self.buf, libc::MSG_PEEK | libc::MSG_TRUNC)
                .map_err(|e| Error::io(format!("{op}: receive netlink reply"), e))?;
            self.buf.clear();
            if self.buf.capacity() < len.max(RECV_BUF) {
                self.buf.reserve(len.max(RECV_BUF));
            }
            let (len, from) = self
                .socket
                .recv_from(&mut self.buf, 0)
                .map_err(|e| Error::io(format!("{op}: receive netlink reply"), e))?;
            if len > self.buf.len() {
                return Err(protocol(op, format!("reply of {len} bytes was truncated")));
            }
            if from.port_number() == 0 {
                return Ok(());
            }
            tracing::debug!(
                port = from.port_number(),
                "ignoring netlink datagram not sent by the kernel"
            );
        }
    }
}

pub(crate) const DUMP_INTERRUPTED: &str = "dump interrupted by a concurrent change";

pub(crate) fn protocol(op: &str, detail: impl Into<String>) -> Error {
    Error::Protocol {
        op: op.to_string(),
        detail: detail.into(),
    }
}

/// Serializes one request.
pub(crate) fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    packet.finalize();
    let mut bytes = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut bytes);
    bytes
}

/// The state of one request while its replies arrive. Pure: it is fed
/// datagrams, so it can be tested without a socket.
#[derive(Debug)]
pub(crate) struct Exchange {
    op: String,
    seq: u32,
    dump: bool,
    interrupted: bool,
    replies: Vec<RouteNetlinkMessage>,
    error: Option<Error>,
}

impl Exchange {
    pub(crate) fn new(op: &str, seq: u32, dump: bool) -> Exchange {
        Exchange {
            op: op.to_string(),
            seq,
            dump,
            interrupted: false,
            replies: Vec::new(),
            error: None,
        }
    }

    fn fail(&mut self, err: Error) {
        if self.error.is_none() {
            self.error = Some(err);
        }
    }

    /// Consumes one datagram. Returns true when the exchange is complete.
    pub(crate) fn feed(&mut self, datagram: &[u8]) -> bool {
        let mut offset = 0;
        while offset < datagram.len() {
            let rest = &datagram[offset..];
            let Ok(buffer) = NetlinkBuffer::new_checked(rest) else {
                self.fail(protocol(&self.op, "malformed netlink message header"));
                return true;
            };
            let len = buffer.length() as usize;
            if len < NLMSG_HDRLEN || len > rest.len() {
                self.fail(protocol(
                    &self.op,
                    format!("netlink message length {len} out of range"),
                ));
                return true;
            }
            let (seq, kind, flags) = (
                buffer.sequence_number(),
                buffer.message_type(),
                buffer.flags(),
            );
            offset += len.next_multiple_of(4).max(NLMSG_HDRLEN);
            if seq != self.seq {
                tracing::debug!(seq, expected = self.seq, "skipping stale netlink message");
                continue;
            }
            if flags & NLM_F_DUMP_INTR != 0 {
                self.interrupted = true;
            }
            let message = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len]) {
                Ok(message) => message,
                Err(e) => {
                    self.fail(protocol(
                        &self.op,
                        format!("cannot parse reply of type {kind}: {e}"),
                    ));
                    if kind == NLMSG_ERROR || kind == NLMSG_DONE {
                        return true;
                    }
                    continue;
                }
            };
            match message.payload {
                NetlinkPayload::InnerMessage(inner) => self.replies.push(inner),
                NetlinkPayload::Error(err) => {
                    if let Some(code) = err.code {
                        self.fail(Error::Netlink {
                            op: self.op.clone(),
                            errno: -code.get(),
                            extack: extack_message(&err.header, flags),
                        });
                    } else if self.dump {
                        self.fail(protocol(&self.op, "acknowledgement instead of NLMSG_DONE"));
                    }
                    return true;
                }
                NetlinkPayload::Done(done) => {
                    if done.code != 0 {
                        self.fail(Error::Netlink {
                            op: self.op.clone(),
                            errno: -done.code,
                            extack: None,
                        });
                    } else if !self.dump {
                        self.fail(protocol(
                            &self.op,
                            "NLMSG_DONE instead of an acknowledgement",
                        ));
                    }
                    return true;
                }
                NetlinkPayload::Noop => {}
                NetlinkPayload::Overrun(_) => {
                    self.fail(protocol(&self.op, "NLMSG_OVERRUN: replies were lost"));
                    return true;
                }
                other => {
                    self.fail(protocol(&self.op, format!("unexpected reply {other:?}")));
                }
            }
        }
        false
    }

    pub(crate) fn finish(self) -> Result<Vec<RouteNetlinkMessage>> {
        if let Some(err) = self.error {
            return Err(err);
        }
        if self.interrupted {
            return Err(protocol(&self.op, DUMP_INTERRUPTED));
        }
        Ok(self.replies)
    }
}

/// The `NLMSGERR_ATTR_MSG` string of an error message whose payload (after
/// the error code) is `payload`: the request's header (whole request unless
/// `NLM_F_CAPPED`) followed by attributes.
fn extack_message(payload: &[u8], flags: u16) -> Option<String> {
    let original_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let raw: [u8; 4] = payload.get(..4)?.try_into().ok()?;
        u32::from_ne_bytes(raw) as usize
    };
    let mut attrs = payload.get(original_len.next_multiple_of(4)..)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let value = &attrs[4..len];
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            return Some(String::from_utf8_lossy(&value[..end]).into_owned());
        }
        attrs = attrs.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroI32;

    use netlink_packet_core::{DoneMessage, ErrorMessage, NLM_F_MULTIPART};
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};

    use super::*;

    fn reply(payload: NetlinkPayload<RouteNetlinkMessage>, seq: u32, flags: u16) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        header.flags = flags;
        let mut packet = NetlinkMessage::new(header, payload);
        packet.finalize();
        let mut bytes = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut bytes);
        bytes
    }

    fn link(name: &str) -> RouteNetlinkMessage {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        RouteNetlinkMessage::NewLink(msg)
    }

    fn error(code: i32, header: Vec<u8>) -> NetlinkPayload<RouteNetlinkMessage> {
        let mut err = ErrorMessage::default();
        err.code = NonZeroI32::new(code);
        err.header = header;
        NetlinkPayload::Error(err)
    }

    fn done() -> NetlinkPayload<RouteNetlinkMessage> {
        NetlinkPayload::Done(DoneMessage::default())
    }

    #[test]
    fn encode_sets_length_type_flags_and_seq() {
        let bytes = encode(link("br0"), NLM_F_REQUEST | NLM_F_ACK, 7);
        let buffer = NetlinkBuffer::new_checked(&bytes[..]).unwrap();
        assert_eq!(buffer.length() as usize, bytes.len());
        assert_eq!(buffer.message_type(), libc::RTM_NEWLINK);
        assert_eq!(buffer.flags(), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(buffer.sequence_number(), 7);
    }

    #[test]
    fn ack_completes_a_request() {
        let mut ex = Exchange::new("set up", 3, false);
        assert!(ex.feed(&reply(error(0, vec![0; 16]), 3, 0)));
        assert!(ex.finish().unwrap().is_empty());
    }

    #[test]
    fn error_code_becomes_typed_errno() {
        let mut ex = Exchange::new("create bridge b", 3, false);
        assert!(ex.feed(&reply(error(-libc::EEXIST, vec![0; 16]), 3, 0)));
        let err = ex.finish().unwrap_err();
        assert!(err.is_exists());
        assert_eq!(
            err.to_string(),
            "create bridge b: file exists (os error 17)"
        );
    }

    #[test]
    fn extack_text_is_kept() {
        let mut payload = vec![0u8; 16];
        let text = b"Unknown device type\0";
        let len = (4 + text.len()) as u16;
        payload.extend_from_slice(&len.to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        payload.resize(payload.len().next_multiple_of(4), 0);
        let mut ex = Exchange::new("create link x", 1, false);
        assert!(ex.feed(&reply(error(-libc::EOPNOTSUPP, payload), 1, NLM_F_CAPPED)));
        match ex.finish().unwrap_err() {
            Error::Netlink { errno, extack, .. } => {
                assert_eq!(errno, libc::EOPNOTSUPP);
                assert_eq!(extack.as_deref(), Some("Unknown device type"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn stale_sequence_numbers_are_skipped() {
        let mut ex = Exchange::new("set up", 5, false);
        // A leftover error for request 4 must not end request 5.
        assert!(!ex.feed(&reply(error(-libc::ENODEV, vec![0; 16]), 4, 0)));
        assert!(ex.feed(&reply(error(0, vec![0; 16]), 5, 0)));
        assert!(ex.finish().unwrap().is_empty());
    }

    #[test]
    fn multipart_dump_collects_until_done() {
        let mut ex = Exchange::new("dump links", 9, true);
        let mut first = reply(NetlinkPayload::InnerMessage(link("a")), 9, NLM_F_MULTIPART);
        first.extend(reply(
            NetlinkPayload::InnerMessage(link("b")),
            9,
            NLM_F_MULTIPART,
        ));
        assert!(!ex.feed(&first));
        assert!(!ex.feed(&reply(
            NetlinkPayload::InnerMessage(link("c")),
            9,
            NLM_F_MULTIPART
        )));
        assert!(ex.feed(&reply(done(), 9, NLM_F_MULTIPART)));
        assert_eq!(ex.finish().unwrap().len(), 3);
    }

    #[test]
    fn interrupted_dump_is_reported() {
        let mut ex = Exchange::new("dump links", 9, true);
        assert!(!ex.feed(&reply(
            NetlinkPayload::InnerMessage(link("a")),
            9,
            NLM_F_MULTIPART | NLM_F_DUMP_INTR
        )));
        assert!(ex.feed(&reply(done(), 9, NLM_F_MULTIPART)));
        match ex.finish().unwrap_err() {
            Error::Protocol { detail, .. } => assert_eq!(detail, DUMP_INTERRUPTED),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn dump_error_is_typed() {
        let mut ex = Exchange::new("dump routes", 2, true);
        assert!(ex.feed(&reply(error(-libc::EOPNOTSUPP, vec![0; 16]), 2, 0)));
        assert_eq!(ex.finish().unwrap_err().errno(), Some(libc::EOPNOTSUPP));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let mut ex = Exchange::new("dump links", 2, true);
        assert!(ex.feed(&[1, 2, 3]));
        assert!(matches!(ex.finish(), Err(Error::Protocol { .. })));
    }
}
