//! The DNS wire format, as much of it as this server needs (RFC 1035, RFC 6891).
//!
//! Hand-written rather than built on a general DNS library because the hot path only ever
//! reads one question and writes a handful of fixed-shape records: parsing goes straight
//! from the datagram into a lowercase name on the stack, and answers are appended to a
//! reused buffer with compression pointers into the question. Forwarded answers are never
//! decoded into records; [`inspect_response`] walks them once to find TTLs for the cache.

/// Length of the fixed DNS header.
pub(crate) const HEADER_LEN: usize = 12;
/// Largest UDP answer sent to a client that did not announce a size with EDNS.
pub(crate) const MIN_UDP_PAYLOAD: usize = 512;
/// The UDP payload size this server announces and the largest it sends.
pub(crate) const MAX_UDP_PAYLOAD: u16 = 1232;

pub(crate) const QR: u16 = 0x8000;
pub(crate) const AA: u16 = 0x0400;
pub(crate) const TC: u16 = 0x0200;
pub(crate) const RD: u16 = 0x0100;
pub(crate) const RA: u16 = 0x0080;
pub(crate) const CD: u16 = 0x0010;
const OPCODE_MASK: u16 = 0x7800;

pub(crate) const CLASS_IN: u16 = 1;

/// Record types used by name.
pub(crate) mod rtype {
    pub(crate) const A: u16 = 1;
    pub(crate) const NS: u16 = 2;
    pub(crate) const CNAME: u16 = 5;
    pub(crate) const SOA: u16 = 6;
    pub(crate) const PTR: u16 = 12;
    pub(crate) const MX: u16 = 15;
    pub(crate) const TXT: u16 = 16;
    pub(crate) const AAAA: u16 = 28;
    pub(crate) const SRV: u16 = 33;
    pub(crate) const OPT: u16 = 41;
    pub(crate) const HTTPS: u16 = 65;
    pub(crate) const ANY: u16 = 255;
}

/// Response codes used by name.
pub(crate) mod rcode {
    pub(crate) const NOERROR: u8 = 0;
    pub(crate) const FORMERR: u8 = 1;
    pub(crate) const SERVFAIL: u8 = 2;
    pub(crate) const NXDOMAIN: u8 = 3;
    pub(crate) const NOTIMP: u8 = 4;
    pub(crate) const REFUSED: u8 = 5;
    /// Extended rcode 16 (BADVERS): the upper 8 bits go in the OPT record.
    pub(crate) const BADVERS: u16 = 16;
}

#[inline]
pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// What the client said about EDNS in its OPT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Edns {
    /// The requester's UDP payload size (values below 512 read as 512).
    pub(crate) udp_size: u16,
    /// The DNSSEC OK bit.
    pub(crate) dnssec_ok: bool,
}

/// The question's name: lowercase dotted text (no trailing dot) plus where each label starts
/// in the wire form, so answers can point back into the question.
pub(crate) struct QName {
    text: [u8; 256],
    text_len: u8,
    /// Offset of each label's length byte, relative to the packet start.
    label_at: [u16; 128],
    labels: u8,
    /// False when a label holds a `.` or a non-ASCII byte: such names are never berth names.
    plain: bool,
}

impl QName {
    /// Lowercase text of the name without a trailing dot ("" for the root), if it is plain.
    pub(crate) fn as_str(&self) -> Option<&str> {
        if !self.plain {
            return None;
        }
        // Plain names are ASCII only, so this never fails.
        std::str::from_utf8(&self.text[..usize::from(self.text_len)]).ok()
    }

    /// Number of labels (0 for the root).
    pub(crate) fn label_count(&self) -> usize {
        usize::from(self.labels)
    }

    /// Packet offset of label `i`; the suffix from there is a name answers can point to.
    pub(crate) fn label_offset(&self, i: usize) -> u16 {
        self.label_at[i]
    }

    /// The labels as byte slices of the lowercase text, first to last.
    pub(crate) fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let text = &self.text[..usize::from(self.text_len)];
        let count = self.label_count();
        text.split(|&c| c == b'.').take(count)
    }
}

/// A parsed query: everything the server decides on.
pub(crate) struct Query<'a> {
    pub(crate) id: u16,
    pub(crate) flags: u16,
    /// The question exactly as the client sent it: name, type and class.
    pub(crate) question: &'a [u8],
    pub(crate) name: QName,
    pub(crate) qtype: u16,
    pub(crate) qclass: u16,
    pub(crate) edns: Option<Edns>,
}

impl Query<'_> {
    /// Largest UDP answer this client accepts.
    pub(crate) fn udp_limit(&self) -> usize {
        match self.edns {
            Some(e) => usize::from(e.udp_size.clamp(512, MAX_UDP_PAYLOAD)),
            None => MIN_UDP_PAYLOAD,
        }
    }

    /// End of the question in the packet.
    pub(crate) fn question_end(&self) -> usize {
        HEADER_LEN + self.question.len()
    }
}

/// Why a packet is not a query this server handles.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Not worth an answer: shorter than a header, or a response (answering responses can
    /// make two servers loop).
    Ignore,
    /// Answer with a bare header carrying this rcode.
    Reply { id: u16, flags: u16, rcode: u8 },
    /// EDNS version other than 0: BADVERS, with the question.
    BadVersion { id: u16, flags: u16 },
}

/// Reads the end of a name starting at `pos`, following no pointers; `None` if malformed.
pub(crate) fn skip_name(b: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *b.get(pos)?;
        match len & 0xC0 {
            0 if len == 0 => return Some(pos + 1),
            0 => pos += 1 + usize::from(len),
            0xC0 => return (pos + 2 <= b.len()).then_some(pos + 2),
            _ => return None,
        }
    }
}

/// Parses a query packet.
pub(crate) fn parse_query(b: &[u8]) -> Result<Query<'_>, Reject> {
    if b.len() < HEADER_LEN {
        return Err(Reject::Ignore);
    }
    let id = u16_at(b, 0);
    let flags = u16_at(b, 2);
    if flags & QR != 0 {
        return Err(Reject::Ignore);
    }
    let formerr = Reject::Reply {
        id,
        flags,
        rcode: rcode::FORMERR,
    };
    if flags & OPCODE_MASK != 0 {
        return Err(Reject::Reply {
            id,
            flags,
            rcode: rcode::NOTIMP,
        });
    }
    if u16_at(b, 4) != 1 {
        return Err(formerr);
    }
    let mut name = QName {
        text: [0; 256],
        text_len: 0,
        label_at: [0; 128],
        labels: 0,
        plain: true,
    };
    let mut pos = HEADER_LEN;
    let mut text_len = 0usize;
    loop {
        let Some(&len) = b.get(pos) else {
            return Err(formerr);
        };
        if len == 0 {
            pos += 1;
            break;
        }
        // A query's question has nothing before it to point to.
        if len & 0xC0 != 0 || pos + 1 + usize::from(len) > b.len() {
            return Err(formerr);
        }
        let labels = usize::from(name.labels);
        // 127 labels of one byte already make a 255-byte name.
        if labels == 127 || pos + 1 + usize::from(len) - HEADER_LEN > 254 {
            return Err(formerr);
        }
        name.label_at[labels] = pos as u16;
        name.labels += 1;
        if labels > 0 {
            name.text[text_len] = b'.';
            text_len += 1;
        }
        for &c in &b[pos + 1..pos + 1 + usize::from(len)] {
            if c == b'.' || !c.is_ascii() {
                name.plain = false;
            }
            name.text[text_len] = c.to_ascii_lowercase();
            text_len += 1;
        }
        pos += 1 + usize::from(len);
    }
    name.text_len = text_len as u8;
    if pos + 4 > b.len() {
        return Err(formerr);
    }
    let qtype = u16_at(b, pos);
    let qclass = u16_at(b, pos + 2);
    let question = &b[HEADER_LEN..pos + 4];
    pos += 4;

    // Look for an OPT record; other records in a query are skipped, and a malformed tail
    // only costs the client its EDNS.
    let mut edns = None;
    let records = u32::from(u16_at(b, 6)) + u32::from(u16_at(b, 8)) + u32::from(u16_at(b, 10));
    for _ in 0..records {
        let Some(after) = skip_name(b, pos) else {
            break;
        };
        if after + 10 > b.len() {
            break;
        }
        let rtype = u16_at(b, after);
        let rdlen = usize::from(u16_at(b, after + 8));
        if rtype == rtype::OPT {
            let ttl = u32_at(b, after + 4);
            if (ttl >> 16) & 0xFF != 0 {
                return Err(Reject::BadVersion { id, flags });
            }
            edns = Some(Edns {
                udp_size: u16_at(b, after + 2).max(512),
                dnssec_ok: ttl & 0x8000 != 0,
            });
            break;
        }
        pos = after + 10 + rdlen;
    }
    Ok(Query {
        id,
        flags,
        question,
        name,
        qtype,
        qclass,
        edns,
    })
}

/// Appends an answer to a buffer: header, the client's question, records, OPT.
pub(crate) struct Reply<'a> {
    buf: &'a mut Vec<u8>,
    qend: usize,
    answers: u16,
    authority: u16,
}

impl<'a> Reply<'a> {
    /// Starts an answer to `q` with `rcode`; `aa` marks berth's own (authoritative) answers.
    pub(crate) fn new(buf: &'a mut Vec<u8>, q: &Query<'_>, rcode: u8, aa: bool) -> Self {
        buf.clear();
        let mut flags = QR | RA | (q.flags & (RD | CD)) | u16::from(rcode & 0x0F);
        if aa {
            flags |= AA;
        }
        buf.extend_from_slice(&q.id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(q.question);
        let qend = buf.len();
        Reply {
            buf,
            qend,
            answers: 0,
            authority: 0,
        }
    }

    fn record(&mut self, owner: u16, rtype: u16, ttl: u32, rdata: &[&[u8]]) {
        let len: usize = rdata.iter().map(|p| p.len()).sum();
        self.buf.extend_from_slice(&(0xC000 | owner).to_be_bytes());
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        for part in rdata {
            self.buf.extend_from_slice(part);
        }
    }

    /// Adds an answer record owned by the question's name.
    pub(crate) fn answer(&mut self, rtype: u16, ttl: u32, rdata: &[&[u8]]) {
        self.record(HEADER_LEN as u16, rtype, ttl, rdata);
        self.answers += 1;
    }

    /// Adds an SOA record owned by the name at packet offset `owner` (a suffix of the
    /// question), to the answer or the authority section.
    pub(crate) fn soa(&mut self, owner: u16, ttl: u32, rdata: &[&[u8]], in_answer: bool) {
        self.record(owner, rtype::SOA, ttl, rdata);
        if in_answer {
            self.answers += 1;
        } else {
            self.authority += 1;
        }
    }

    /// Writes the counts and the OPT record (when the query had one) and truncates to
    /// `limit` bytes by dropping all records and setting TC.
    pub(crate) fn finish(self, edns: Option<Edns>, limit: usize) {
        let Reply {
            buf,
            qend,
            mut answers,
            mut authority,
        } = self;
        let opt_len = if edns.is_some() { 11 } else { 0 };
        if buf.len() + opt_len > limit {
            buf.truncate(qend);
            buf[2] |= (TC >> 8) as u8;
            answers = 0;
            authority = 0;
        }
        put_u16(buf, 6, answers);
        put_u16(buf, 8, authority);
        put_u16(buf, 10, u16::from(edns.is_some()));
        if edns.is_some() {
            push_opt(buf, 0);
        }
    }
}

/// Appends an OPT record announcing [`MAX_UDP_PAYLOAD`], with `ext_rcode` in its upper bits.
fn push_opt(buf: &mut Vec<u8>, ext_rcode: u8) {
    buf.push(0);
    buf.extend_from_slice(&rtype::OPT.to_be_bytes());
    buf.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
    buf.extend_from_slice(&[ext_rcode, 0, 0, 0]);
    buf.extend_from_slice(&[0, 0]);
}

/// A bare answer to a packet that [`parse_query`] rejected.
pub(crate) fn reject_reply(buf: &mut Vec<u8>, reject: &Reject, packet: &[u8]) -> bool {
    buf.clear();
    match *reject {
        Reject::Ignore => false,
        Reject::Reply { id, flags, rcode } => {
            let flags = QR | RA | (flags & (RD | OPCODE_MASK)) | u16::from(rcode);
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&flags.to_be_bytes());
            buf.extend_from_slice(&[0; 8]);
            true
        }
        Reject::BadVersion { id, flags } => {
            // The question parsed, so the packet holds it right after the header.
            let qend = skip_name(packet, HEADER_LEN).map_or(HEADER_LEN, |e| e + 4);
            let flags = QR | RA | (flags & RD) | (rcode::BADVERS & 0x0F);
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&flags.to_be_bytes());
            buf.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
            buf.extend_from_slice(&packet[HEADER_LEN..qend]);
            push_opt(buf, (rcode::BADVERS >> 4) as u8);
            true
        }
    }
}

/// Writes `name` ("a.b.c", no trailing dot; "" for the root) in wire form; `None` when a
/// label is empty or longer than 63 bytes or the whole name longer than 255.
pub(crate) fn encode_name(name: &str, out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                out.truncate(start);
                return None;
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > 255 {
        out.truncate(start);
        return None;
    }
    Some(())
}

/// What the cache needs to know about an upstream's answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ResponseMeta {
    pub(crate) rcode: u8,
    pub(crate) truncated: bool,
    pub(crate) answers: u16,
    /// Offsets of the TTL field of every record except OPT.
    pub(crate) ttl_offsets: Vec<u16>,
    /// Smallest TTL of those records.
    pub(crate) min_ttl: Option<u32>,
    /// min(TTL, MINIMUM) of the first SOA in the authority section (RFC 2308).
    pub(crate) negative_ttl: Option<u32>,
}

/// Checks that `b` answers `question` (case-insensitively, as clients may randomise case)
/// and walks its records; `None` when it does not or is malformed.
pub(crate) fn inspect_response(b: &[u8], question: &[u8]) -> Option<ResponseMeta> {
    if b.len() < HEADER_LEN || u16_at(b, 2) & QR == 0 || u16_at(b, 4) != 1 {
        return None;
    }
    let qend = HEADER_LEN + question.len();
    let got = b.get(HEADER_LEN..qend)?;
    let name_len = question.len().checked_sub(4)?;
    if !got[..name_len].eq_ignore_ascii_case(&question[..name_len])
        || got[name_len..] != question[name_len..]
    {
        return None;
    }
    let flags = u16_at(b, 2);
    let answers = u16_at(b, 6);
    let authority = u16_at(b, 8);
    let total = u32::from(answers) + u32::from(authority) + u32::from(u16_at(b, 10));
    let mut meta = ResponseMeta {
        rcode: (flags & 0x0F) as u8,
        truncated: flags & TC != 0,
        answers,
        ..ResponseMeta::default()
    };
    let mut pos = qend;
    for i in 0..total {
        let after = skip_name(b, pos)?;
        if after + 10 > b.len() {
            return None;
        }
        let rtype = u16_at(b, after);
        let ttl = u32_at(b, after + 4);
        let rdlen = usize::from(u16_at(b, after + 8));
        let end = after + 10 + rdlen;
        if end > b.len() {
            return None;
        }
        if rtype != rtype::OPT {
            meta.ttl_offsets.push(u16::try_from(after + 4).ok()?);
            meta.min_ttl = Some(meta.min_ttl.map_or(ttl, |m| m.min(ttl)));
            let in_authority = i >= u32::from(answers) && i < u32::from(answers + authority);
            if rtype == rtype::SOA && in_authority && meta.negative_ttl.is_none() && rdlen >= 22 {
                meta.negative_ttl = Some(ttl.min(u32_at(b, end - 4)));
            }
        }
        pos = end;
    }
    Some(meta)
}

/// Shrinks an upstream's answer that does not fit the client's UDP limit to its question,
/// with TC set, so the client retries over TCP.
pub(crate) fn truncate_to(b: &mut Vec<u8>, qend: usize, limit: usize) {
    if b.len() <= limit || b.len() < qend {
        return;
    }
    b.truncate(qend);
    b[2] |= (TC >> 8) as u8;
    b[6..12].fill(0);
}

/// Sets the id of a packet.
pub(crate) fn set_id(b: &mut [u8], id: u16) {
    put_u16(b, 0, id);
}

/// Copies the client's RD and CD bits into an answer taken from elsewhere (the cache).
pub(crate) fn set_client_flags(b: &mut [u8], client_flags: u16) {
    let flags = (u16_at(b, 2) & !(RD | CD)) | (client_flags & (RD | CD)) | RA;
    put_u16(b, 2, flags);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
        let mut b = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(edns.is_some()),
        ];
        encode_name(name, &mut b).unwrap();
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        if let Some(size) = edns {
            b.push(0);
            b.extend_from_slice(&rtype::OPT.to_be_bytes());
            b.extend_from_slice(&size.to_be_bytes());
            b.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
        }
        b
    }

    #[test]
    fn parses_a_query_and_lowercases_the_name() {
        let b = query("Web.Frontend.BERTH.internal", rtype::AAAA, Some(4096));
        let q = parse_query(&b).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.qtype, rtype::AAAA);
        assert_eq!(q.qclass, CLASS_IN);
        assert_eq!(q.name.as_str(), Some("web.frontend.berth.internal"));
        assert_eq!(q.name.label_count(), 4);
        assert_eq!(q.name.label_offset(0), 12);
        assert_eq!(q.name.label_offset(1), 16);
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                dnssec_ok: true
            })
        );
        assert_eq!(q.udp_limit(), usize::from(MAX_UDP_PAYLOAD));
        let labels: Vec<&[u8]> = q.name.labels().collect();
        assert_eq!(labels, [&b"web"[..], b"frontend", b"berth", b"internal"]);
    }

    #[test]
    fn root_name_and_no_edns() {
        let b = query("", rtype::NS, None);
        let q = parse_query(&b).unwrap();
        assert_eq!(q.name.as_str(), Some(""));
        assert_eq!(q.name.label_count(), 0);
        assert_eq!(q.udp_limit(), 512);
    }

    #[test]
    fn rejects_malformed_and_ignores_responses() {
        assert_eq!(parse_query(&[0; 5]).err(), Some(Reject::Ignore));
        let mut b = query("a", rtype::A, None);
        b[2] |= 0x80;
        assert_eq!(parse_query(&b).err(), Some(Reject::Ignore));
        let b = query("a", rtype::A, None);
        assert!(matches!(
            parse_query(&b[..b.len() - 2]),
            Err(Reject::Reply {
                rcode: rcode::FORMERR,
                ..
            })
        ));
        let mut b = query("a", rtype::A, None);
        b[2] |= 0x28; // opcode 5 (UPDATE)
        assert!(matches!(
            parse_query(&b),
            Err(Reject::Reply {
                rcode: rcode::NOTIMP,
                ..
            })
        ));
        let mut b = query("a", rtype::A, None);
        b[12] = 0xC0; // a pointer in the question
        assert!(matches!(
            parse_query(&b),
            Err(Reject::Reply {
                rcode: rcode::FORMERR,
                ..
            })
        ));
    }

    #[test]
    fn a_label_with_a_dot_is_not_plain() {
        let mut b = query("ab.c", rtype::A, None);
        b[14] = b'.'; // "a.b" as one label
        let q = parse_query(&b).unwrap();
        assert_eq!(q.name.as_str(), None);
    }

    #[test]
    fn reply_truncates_to_the_limit() {
        let b = query("x", rtype::A, None);
        let q = parse_query(&b).unwrap();
        let mut out = Vec::new();
        let mut r = Reply::new(&mut out, &q, rcode::NOERROR, true);
        for i in 0..40u8 {
            r.answer(rtype::A, 5, &[&[10, 0, 0, i]]);
        }
        r.finish(None, 512);
        assert_eq!(out.len(), b.len());
        assert_eq!(u16_at(&out, 2) & TC, TC);
        assert_eq!(u16_at(&out, 6), 0);
    }

    #[test]
    fn inspects_ttls_and_negative_ttl() {
        let b = query("x.example", rtype::A, None);
        let q = parse_query(&b).unwrap();
        let mut out = Vec::new();
        let mut r = Reply::new(&mut out, &q, rcode::NXDOMAIN, false);
        let mut soa = Vec::new();
        encode_name("ns.example", &mut soa).unwrap();
        encode_name("h.example", &mut soa).unwrap();
        for v in [1u32, 2, 3, 4, 30] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        r.soa(14, 300, &[&soa], false);
        r.finish(
            Some(Edns {
                udp_size: 512,
                dnssec_ok: false,
            }),
            512,
        );
        let meta = inspect_response(&out, q.question).unwrap();
        assert_eq!(meta.rcode, rcode::NXDOMAIN);
        assert_eq!(meta.answers, 0);
        assert_eq!(meta.min_ttl, Some(300));
        assert_eq!(meta.negative_ttl, Some(30));
        assert_eq!(meta.ttl_offsets.len(), 1);
        // A different question is not an answer to this one.
        let other = query("y.example", rtype::A, None);
        let oq = parse_query(&other).unwrap();
        assert_eq!(inspect_response(&out, oq.question), None);
    }
}
