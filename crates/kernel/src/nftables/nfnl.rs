//! nfnetlink wire format, shared by nf_tables and ctnetlink ([`crate::conntrack`]):
//! building a message (netlink header, `struct nfgenmsg`, attributes) and
//! walking the messages and attributes the kernel sends back. Pure.

/// `NLA_F_NESTED`: set on the type of an attribute that holds attributes.
pub(crate) const NLA_F_NESTED: u16 = 0x8000;
/// Attribute type bits without `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`.
const NLA_TYPE_MASK: u16 = 0x3fff;
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct nfgenmsg)`.
const NFGENMSG_LEN: usize = 4;
/// `NFNETLINK_V0`.
const NFNETLINK_V0: u8 = 0;

/// One nfnetlink message under construction. Attributes are appended in
/// order; nested ones are opened with [`Builder::nest`] and closed with
/// [`Builder::end`].
#[derive(Debug)]
pub(crate) struct Builder {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Builder {
    /// A message of type `kind` (`subsystem << 8 | message`) with `flags`,
    /// for address family `family` and resource id `res_id`.
    pub(crate) fn new(kind: u16, flags: u16, family: u8, res_id: u16) -> Builder {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq, set by finish
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
        buf.push(family);
        buf.push(NFNETLINK_V0);
        buf.extend_from_slice(&res_id.to_be_bytes());
        Builder {
            buf,
            open: Vec::new(),
        }
    }

    /// Appends an attribute with a raw value (padded to 4 bytes).
    pub(crate) fn put(&mut self, kind: u16, value: &[u8]) -> &mut Builder {
        let len = u16::try_from(4 + value.len()).expect("netlink attribute longer than 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
        self
    }

    /// Appends a NUL-terminated string attribute.
    pub(crate) fn put_str(&mut self, kind: u16, value: &str) -> &mut Builder {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.put(kind, &bytes)
    }

    /// Appends a big-endian 32-bit attribute.
    pub(crate) fn put_be32(&mut self, kind: u16, value: u32) -> &mut Builder {
        self.put(kind, &value.to_be_bytes())
    }

    /// Opens a nested attribute; everything up to the matching
    /// [`Builder::end`] goes inside it.
    pub(crate) fn nest(&mut self, kind: u16) -> &mut Builder {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Closes the innermost open nested attribute.
    pub(crate) fn end(&mut self) -> &mut Builder {
        let start = self.open.pop().expect("end without nest");
        let len = u16::try_from(self.buf.len() - start).expect("nested attribute over 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, 0);
    }

    /// The finished message with sequence number `seq`.
    pub(crate) fn finish(mut self, seq: u32) -> Vec<u8> {
        assert!(self.open.is_empty(), "unclosed nested attribute");
        let len = u32::try_from(self.buf.len()).expect("netlink message over 4 GiB");
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// One message of a datagram from the kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    pub(crate) kind: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    /// Everything after the netlink header.
    pub(crate) payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// `nfgen_family` of an nfnetlink message.
    pub(crate) fn family(&self) -> Option<u8> {
        self.payload.first().copied()
    }

    /// The attributes after the `nfgenmsg` header.
    pub(crate) fn attrs(&self) -> Attrs<'a> {
        Attrs(self.payload.get(NFGENMSG_LEN..).unwrap_or(&[]))
    }
}

/// Splits a datagram into messages. Stops at the first malformed header,
/// returning what came before and an error text.
pub(crate) fn messages(datagram: &[u8]) -> (Vec<Message<'_>>, Option<String>) {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        if rest.len() < NLMSG_HDRLEN {
            return (out, Some(format!("{} trailing bytes", rest.len())));
        }
        let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return (out, Some(format!("message length {len} out of range")));
        }
        out.push(Message {
            kind: u16::from_ne_bytes([rest[4], rest[5]]),
            flags: u16::from_ne_bytes([rest[6], rest[7]]),
            seq: u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes")),
            payload: &rest[NLMSG_HDRLEN..len],
        });
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    (out, None)
}

/// An iterator over netlink attributes: `(type without flags, value)`.
/// Ends at the first malformed attribute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attrs<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.0;
        if rest.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > rest.len() {
            self.0 = &[];
            return None;
        }
        self.0 = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some((kind, &rest[4..len]))
    }
}

impl<'a> Attrs<'a> {
    /// The value of the first attribute of type `kind`.
    pub(crate) fn get(self, kind: u16) -> Option<&'a [u8]> {
        self.into_iter().find(|(k, _)| *k == kind).map(|(_, v)| v)
    }

    /// The first attribute of type `kind` as a NUL-terminated string.
    pub(crate) fn get_str(self, kind: u16) -> Option<String> {
        self.get(kind).map(c_string)
    }

    /// The first attribute of type `kind` as a big-endian u32.
    pub(crate) fn get_be32(self, kind: u16) -> Option<u32> {
        Some(u32::from_be_bytes(self.get(kind)?.try_into().ok()?))
    }
}

/// The bytes of `value` up to its first NUL, as text.
pub(crate) fn c_string(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

/// The payload of an `NLMSG_ERROR` message: the (negative) error code and,
/// when the kernel sent one, its extended-ack text.
pub(crate) fn error_payload(payload: &[u8], flags: u16) -> Option<(i32, Option<String>)> {
    /// `NLM_F_CAPPED`: only the request's header was echoed back.
    const NLM_F_CAPPED: u16 = 0x100;
    /// `NLMSGERR_ATTR_MSG`.
    const NLMSGERR_ATTR_MSG: u16 = 1;
    let code = i32::from_ne_bytes(payload.get(..4)?.try_into().ok()?);
    let echoed = payload.get(4..)?;
    let echoed_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        u32::from_ne_bytes(echoed.get(..4)?.try_into().ok()?) as usize
    };
    let extack = echoed
        .get(echoed_len.next_multiple_of(4)..)
        .and_then(|tlvs| Attrs(tlvs).get_str(NLMSGERR_ATTR_MSG))
        .filter(|text| !text.is_empty());
    Some((code, extack))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_lays_out_header_nfgenmsg_and_padded_attributes() {
        let mut b = Builder::new(0x0a0c, 0x0405, 1, 10);
        b.put_str(1, "t");
        b.nest(3).put(1, &[0xaa; 5]).end();
        b.put_be32(3, 1);
        let bytes = b.finish(42);
        let expected: Vec<u8> = [
            &52u32.to_ne_bytes()[..],
            &0x0a0cu16.to_ne_bytes(),
            &0x0405u16.to_ne_bytes(),
            &42u32.to_ne_bytes(),
            &[0, 0, 0, 0],
            &[1, 0, 0, 10],
            // "t\0", padded
            &6u16.to_ne_bytes(),
            &1u16.to_ne_bytes(),
            b"t\0\0\0",
            // nested { 5 bytes, padded }
            &16u16.to_ne_bytes(),
            &0x8003u16.to_ne_bytes(),
            &9u16.to_ne_bytes(),
            &1u16.to_ne_bytes(),
            &[0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0, 0, 0],
            // be32
            &8u16.to_ne_bytes(),
            &3u16.to_ne_bytes(),
            &[0, 0, 0, 1],
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn messages_and_attributes_round_trip() {
        let mut b = Builder::new(0x0a0d, 2, 2, 0);
        b.put_str(1, "berth").nest(3).put_be32(7, 9).end();
        let mut datagram = b.finish(5);
        datagram.extend(Builder::new(3, 2, 0, 0).finish(5));
        let (msgs, err) = messages(&datagram);
        assert!(err.is_none());
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0].kind, msgs[0].seq, msgs[0].family()),
            (0x0a0d, 5, Some(2))
        );
        let attrs = msgs[0].attrs();
        assert_eq!(attrs.get_str(1).as_deref(), Some("berth"));
        assert_eq!(Attrs(attrs.get(3).unwrap()).get_be32(7), Some(9));
        assert_eq!(attrs.get(4), None);
        assert_eq!(msgs[1].kind, 3);
    }

    #[test]
    fn malformed_input_is_reported_not_followed() {
        let (msgs, err) = messages(&[1, 2, 3]);
        assert!(msgs.is_empty() && err.is_some());
        let mut bad = Builder::new(3, 0, 0, 0).finish(1);
        bad[0] = 200;
        assert!(messages(&bad).1.is_some());
        // An attribute claiming more bytes than there are ends the walk.
        assert_eq!(Attrs(&[50, 0, 1, 0, 0, 0, 0, 0]).count(), 0);
    }

    #[test]
    fn error_payload_with_extack() {
        let mut payload = (-libc::ENOENT).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; 16]); // capped: the request header only
        let text = b"No such set\0";
        payload.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(text);
        let (code, extack) = error_payload(&payload, 0x100).unwrap();
        assert_eq!(code, -libc::ENOENT);
        assert_eq!(extack.as_deref(), Some("No such set"));
        let ack = [0u8; 20];
        assert_eq!(error_payload(&ack, 0), Some((0, None)));
    }
}
