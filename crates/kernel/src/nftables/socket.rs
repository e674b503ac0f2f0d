//! The NETLINK_NETFILTER socket, shared by nf_tables and ctnetlink: send
//! requests, wait for their acknowledgements, read dumps.
//!
//! As in [`crate::netlink`], every request carries a fresh sequence number,
//! messages with other sequence numbers are skipped and datagrams not sent by
//! the kernel (port 0) are ignored.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_DUMP_INTR};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use super::nfnl::{self, Message};
use crate::{Error, Result};

/// Initial receive buffer; grown when the kernel has a larger datagram.
const RECV_BUF: usize = 64 * 1024;

/// A kernel's negative answer to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nack {
    pub(crate) seq: u32,
    pub(crate) errno: i32,
    pub(crate) extack: Option<String>,
}

impl Nack {
    pub(crate) fn into_error(self, op: impl Into<String>) -> Error {
        Error::Netlink {
            op: op.into(),
            errno: self.errno,
            extack: self.extack,
        }
    }
}

/// One NETLINK_NETFILTER socket, bound to the network namespace of the
/// thread that opened it.
#[derive(Debug)]
pub(crate) struct NfSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    sndbuf: usize,
}

impl AsFd for NfSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd belongs to the socket owned by self, so it stays open for as long
        // as the returned borrow of self.
        unsafe { BorrowedFd::borrow_raw(self.socket.as_raw_fd()) }
    }
}

impl NfSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open(op: &str) -> Result<NfSocket> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io(op, e))?;
        socket.bind_auto().map_err(|e| Error::io(op, e))?;
        socket.set_ext_ack(true).map_err(|e| Error::io(op, e))?;
        socket.set_cap_ack(true).map_err(|e| Error::io(op, e))?;
        Ok(NfSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
            sndbuf: 0,
        })
    }

    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// A fresh, non-zero sequence number.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }

    /// Sends one datagram (one or several messages) to the kernel, first
    /// growing the send buffer if the datagram would not fit in it.
    pub(crate) fn send(&mut self, op: &str, bytes: &[u8]) -> Result<()> {
        if bytes.len() + 1024 > self.sndbuf {
            self.grow_sndbuf(op, bytes.len() + 64 * 1024)?;
        }
        let kernel = netlink_sys::SocketAddr::new(0, 0);
        let sent = self
            .socket
            .send_to(bytes, &kernel, 0)
            .map_err(|e| Error::io(format!("{op}: send netlink request"), e))?;
        if sent != bytes.len() {
            return Err(protocol(
                op,
                format!("short send: {sent} of {} bytes", bytes.len()),
            ));
        }
        Ok(())
    }

    fn grow_sndbuf(&mut self, op: &str, want: usize) -> Result<()> {
        let fd = self.socket.as_raw_fd();
        let current = getsockopt_int(fd, libc::SO_SNDBUF)
            .map_err(|e| Error::io(format!("{op}: read SO_SNDBUF"), e))?;
        if current < want {
            let value = libc::c_int::try_from(want).unwrap_or(libc::c_int::MAX);
            // SO_SNDBUFFORCE ignores wmem_max (needs CAP_NET_ADMIN, which
            // nf_tables needs anyway); SO_SNDBUF is the fallback.
            setsockopt_int(fd, libc::SO_SNDBUFFORCE, value)
                .or_else(|_| setsockopt_int(fd, libc::SO_SNDBUF, value))
                .map_err(|e| Error::io(format!("{op}: set SO_SNDBUF"), e))?;
        }
        self.sndbuf = getsockopt_int(fd, libc::SO_SNDBUF)
            .map_err(|e| Error::io(format!("{op}: read SO_SNDBUF"), e))?;
        Ok(())
    }

    /// Reads one datagram from the kernel into the internal buffer and
    /// returns it. Errors keep their errno (`ENOBUFS`: messages were lost;
    /// `EAGAIN` on a non-blocking socket).
    pub(crate) fn recv(&mut self) -> io::Result<&[u8]> {
        loop {
            self.buf.clear();
            let (len, _) = self
                .socket
                .recv_from(&mut self.buf, libc::MSG_PEEK | libc::MSG_TRUNC)?;
            self.buf.clear();
            self.buf.reserve(len.max(RECV_BUF));
            let (len, from) = self.socket.recv_from(&mut self.buf, 0)?;
            if len > self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("netlink datagram of {len} bytes was truncated"),
                ));
            }
            if from.port_number() == 0 {
                return Ok(&self.buf);
            }
            tracing::debug!(
                port = from.port_number(),
                "ignoring netlink datagram not sent by the kernel"
            );
        }
    }

    /// Waits until every sequence number in `seqs` is acknowledged, or until
    /// `header` (the batch header's sequence number) is refused. Returns the
    /// refusals in arrival order; an empty list means every message was
    /// accepted.
    pub(crate) fn wait_acks(
        &mut self,
        op: &str,
        seqs: impl IntoIterator<Item = u32>,
        header: Option<u32>,
    ) -> Result<Vec<Nack>> {
        let mut pending: HashSet<u32> = seqs.into_iter().collect();
        let mut nacks = Vec::new();
        while !pending.is_empty() {
            let datagram = self
                .recv()
                .map_err(|e| Error::io(format!("{op}: receive netlink reply"), e))?;
            let (msgs, malformed) = nfnl::messages(datagram);
            for msg in msgs {
                if msg.kind != NLMSG_ERROR {
                    continue;
                }
                let is_header = header == Some(msg.seq);
                if !is_header && !pending.remove(&msg.seq) {
                    continue;
                }
                let (code, extack) = nfnl::error_payload(msg.payload, msg.flags)
                    .ok_or_else(|| protocol(op, "truncated NLMSG_ERROR"))?;
                if code != 0 {
                    nacks.push(Nack {
                        seq: msg.seq,
                        errno: -code,
                        extack,
                    });
                    if is_header {
                        // The batch as a whole failed; per-message answers
                        // may never come.
                        return Ok(nacks);
                    }
                }
            }
            if let Some(detail) = malformed {
                return Err(protocol(op, detail));
            }
        }
        Ok(nacks)
    }

    /// Sends `request` (already finished with sequence number `seq`, flags
    /// including `NLM_F_ACK`) and waits for its acknowledgement.
    pub(crate) fn request(&mut self, op: &str, request: &[u8], seq: u32) -> Result<()> {
        self.send(op, request)?;
        match self.wait_acks(op, [seq], None)?.into_iter().next() {
            Some(nack) => Err(nack.into_error(op)),
            None => Ok(()),
        }
    }

    /// Sends `request` (finished with sequence number `seq`, flags including
    /// `NLM_F_ACK`), passes every reply before the acknowledgement to `each`,
    /// and returns once it is acknowledged; a refusal is the error.
    pub(crate) fn replies(
        &mut self,
        op: &str,
        request: &[u8],
        seq: u32,
        mut each: impl FnMut(&Message<'_>) -> Result<()>,
    ) -> Result<()> {
        self.send(op, request)?;
        loop {
            let datagram = self
                .recv()
                .map_err(|e| Error::io(format!("{op}: receive netlink reply"), e))?;
            let (msgs, malformed) = nfnl::messages(datagram);
            for msg in msgs.iter().filter(|m| m.seq == seq) {
                if msg.kind == NLMSG_ERROR {
                    let (code, extack) = nfnl::error_payload(msg.payload, msg.flags)
                        .ok_or_else(|| protocol(op, "truncated NLMSG_ERROR"))?;
                    if code == 0 {
                        return Ok(());
                    }
                    return Err(Nack {
                        seq,
                        errno: -code,
                        extack,
                    }
                    .into_error(op));
                }
                each(msg)?;
            }
            if let Some(detail) = malformed {
                return Err(protocol(op, detail));
            }
        }
    }

    /// Sends a dump request (finished with sequence number `seq`) and passes
    /// every reply to `each` until `NLMSG_DONE`. Returns true if the kernel
    /// flagged the dump as interrupted by a concurrent change.
    pub(crate) fn dump(
        &mut self,
        op: &str,
        request: &[u8],
        seq: u32,
        mut each: impl FnMut(&Message<'_>) -> Result<()>,
    ) -> Result<bool> {
        self.send(op, request)?;
        let mut interrupted = false;
        loop {
            let datagram = self
                .recv()
                .map_err(|e| Error::io(format!("{op}: receive netlink reply"), e))?;
            let (msgs, malformed) = nfnl::messages(datagram);
            for msg in msgs.iter().filter(|m| m.seq == seq) {
                interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                match msg.kind {
                    NLMSG_DONE => {
                        let code = msg
                            .payload
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                        if code < 0 {
                            return Err(Error::netlink(op, -code));
                        }
                        return Ok(interrupted);
                    }
                    NLMSG_ERROR => {
                        let (code, extack) = nfnl::error_payload(msg.payload, msg.flags)
                            .ok_or_else(|| protocol(op, "truncated NLMSG_ERROR"))?;
                        if code == 0 {
                            return Err(protocol(op, "acknowledgement instead of NLMSG_DONE"));
                        }
                        return Err(Nack {
                            seq,
                            errno: -code,
                            extack,
                        }
                        .into_error(op));
                    }
                    NLMSG_OVERRUN => return Err(protocol(op, "NLMSG_OVERRUN: replies were lost")),
                    _ => each(msg)?,
                }
            }
            if let Some(detail) = malformed {
                return Err(protocol(op, detail));
            }
        }
    }
}

pub(crate) fn protocol(op: &str, detail: impl Into<String>) -> Error {
    Error::Protocol {
        op: op.to_string(),
        detail: detail.into(),
    }
}

fn getsockopt_int(fd: RawFd, option: libc::c_int) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of the sizes passed and
    // outlive the call; fd is an open socket owned by the caller.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(value).unwrap_or(0))
}

fn setsockopt_int(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the option value is a c_int that lives across the call and
    // whose exact size is passed; fd is an open socket owned by the caller.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
