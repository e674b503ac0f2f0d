//! The cache of forwarded answers.
//!
//! Keyed by the upstream list the answer came from (containers with different `--dns`
//! never share entries), the lowercase question and the client's EDNS/DO/CD bits. Positive
//! answers live for their smallest TTL, negative ones (NXDOMAIN, NODATA) for the SOA's
//! `min(TTL, MINIMUM)`; both at most `max_ttl`. Answers with TC, other rcodes and negative
//! answers without an SOA are not kept. A hit is the stored answer with the client's id,
//! flags and question (its letter case) and each TTL lowered by the time spent in the cache.
//!
//! Size is bounded by entry count and by the bytes of stored answers (an answer larger than
//! a sixteenth of the byte budget is not kept): when either is reached, expired entries go
//! first, then arbitrary entries, an eighth of the capacity at a time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::records::Upstreams;
use crate::wire::{rcode, set_client_flags, set_id, u32_at, Query, ResponseMeta, CD, HEADER_LEN};

#[derive(Debug, Hash, PartialEq, Eq)]
pub(crate) struct Key {
    upstreams: Upstreams,
    question: Box<[u8]>,
    flags: u8,
}

impl Key {
    pub(crate) fn new(upstreams: &Upstreams, q: &Query<'_>) -> Key {
        let mut question: Box<[u8]> = q.question.into();
        let name_len = question.len() - 4;
        question[..name_len].make_ascii_lowercase();
        let flags = match q.edns {
            None => 0,
            Some(e) if e.dnssec_ok => 3,
            Some(_) => 1,
        } | if q.flags & CD != 0 { 4 } else { 0 };
        Key {
            upstreams: upstreams.clone(),
            question,
            flags,
        }
    }
}

#[derive(Debug)]
struct Entry {
    response: Box<[u8]>,
    ttl_offsets: Box<[u16]>,
    stored: Instant,
    expires: Instant,
}

#[derive(Debug)]
pub(crate) struct Cache {
    state: Mutex<State>,
    capacity: usize,
    max_bytes: usize,
    max_ttl: u32,
}

#[derive(Debug, Default)]
struct State {
    map: HashMap<Key, Entry>,
    /// Sum of the stored answers' lengths.
    bytes: usize,
}

impl State {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.map.remove(key) {
            self.bytes -= e.response.len();
        }
    }
}

impl Cache {
    pub(crate) fn new(capacity: usize, max_bytes: usize, max_ttl: u32) -> Cache {
        Cache {
            state: Mutex::new(State::default()),
            capacity,
            max_bytes,
            max_ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // No code that holds the lock can panic half-way through an update.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the cached answer to `q` into `out`; false on a miss.
    pub(crate) fn get(&self, key: &Key, q: &Query<'_>, now: Instant, out: &mut Vec<u8>) -> bool {
        let mut state = self.lock();
        let Some(e) = state.map.get(key) else {
            return false;
        };
        if now >= e.expires {
            state.remove(key);
            return false;
        }
        let age = u32::try_from(now.duration_since(e.stored).as_secs()).unwrap_or(u32::MAX);
        out.clear();
        out.extend_from_slice(&e.response);
        for &off in e.ttl_offsets.iter() {
            let off = usize::from(off);
            let ttl = u32_at(out, off).saturating_sub(age);
            out[off..off + 4].copy_from_slice(&ttl.to_be_bytes());
        }
        drop(state);
        set_id(out, q.id);
        set_client_flags(out, q.flags);
        out[HEADER_LEN..HEADER_LEN + q.question.len()].copy_from_slice(q.question);
        true
    }

    /// Keeps `response` (an upstream's answer to the key's question) if it is cacheable.
    pub(crate) fn insert(&self, key: Key, response: &[u8], meta: &ResponseMeta, now: Instant) {
        if self.capacity == 0 || meta.truncated || response.len() > self.max_bytes / 16 {
            return;
        }
        let ttl = match meta.rcode {
            rcode::NOERROR if meta.answers > 0 => meta.min_ttl,
            rcode::NOERROR | rcode::NXDOMAIN => meta.negative_ttl,
            _ => None,
        };
        let ttl = match ttl {
            Some(t) if t > 0 => t.min(self.max_ttl),
            _ => return,
        };
        let entry = Entry {
            response: response.into(),
            ttl_offsets: meta.ttl_offsets.clone().into(),
            stored: now,
            expires: now + Duration::from_secs(u64::from(ttl)),
        };
        let mut state = self.lock();
        state.remove(&key);
        let full = |st: &State| {
            st.map.len() >= self.capacity || st.bytes + response.len() > self.max_bytes
        };
        if full(&state) {
            state.map.retain(|_, e| e.expires > now);
            state.bytes = state.map.values().map(|e| e.response.len()).sum();
        }
        if full(&state) {
            // Make room for an eighth more, so that a full cache does not evict on every
            // insert.
            let target_len = if state.map.len() >= self.capacity {
                self.capacity - (self.capacity / 8).max(1)
            } else {
                usize::MAX
            };
            let target_bytes = if state.bytes + response.len() > self.max_bytes {
                (self.max_bytes - self.max_bytes / 8).saturating_sub(response.len())
            } else {
                usize::MAX
            };
            let (mut len, mut bytes) = (state.map.len(), state.bytes);
            let mut victims = Vec::new();
            for (k, e) in &state.map {
                if len <= target_len && bytes <= target_bytes {
                    break;
                }
                victims.push(clone_key(k));
                len -= 1;
                bytes -= e.response.len();
            }
            for k in &victims {
                state.remove(k);
            }
        }
        state.bytes += entry.response.len();
        state.map.insert(key, entry);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

fn clone_key(k: &Key) -> Key {
    Key {
        upstreams: k.upstreams.clone(),
        question: k.question.clone(),
        flags: k.flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_name, inspect_response, parse_query, rtype, Reply, CLASS_IN};
    use std::net::SocketAddr;

    fn packet(name: &str, id: u16) -> Vec<u8> {
        let mut b = id.to_be_bytes().to_vec();
        b.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        encode_name(name, &mut b).unwrap();
        b.extend_from_slice(&rtype::A.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        b
    }

    fn upstreams(port: u16) -> Upstreams {
        vec![SocketAddr::from(([127, 0, 0, 1], port))].into()
    }

    fn answer(q: &Query<'_>, ttl: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = Reply::new(&mut out, q, rcode::NOERROR, false);
        r.answer(rtype::A, ttl, &[&[192, 0, 2, 1]]);
        r.finish(None, 512);
        out
    }

    #[test]
    fn hit_lowers_ttl_and_takes_the_clients_id_and_case() {
        let cache = Cache::new(16, 1 << 20, 3600);
        let t0 = Instant::now();
        let first = packet("example.com", 1);
        let q1 = parse_query(&first).unwrap();
        let resp = answer(&q1, 100);
        let meta = inspect_response(&resp, q1.question).unwrap();
        cache.insert(Key::new(&upstreams(1), &q1), &resp, &meta, t0);

        let second = packet("EXAMPLE.com", 2);
        let q2 = parse_query(&second).unwrap();
        let mut out = Vec::new();
        let later = t0 + Duration::from_secs(30);
        assert!(cache.get(&Key::new(&upstreams(1), &q2), &q2, later, &mut out));
        assert_eq!(&out[..2], &[0, 2]);
        assert_eq!(&out[12..12 + q2.question.len()], q2.question);
        assert_eq!(u32_at(&out, usize::from(meta.ttl_offsets[0])), 70);
        // Other upstreams do not share the entry.
        assert!(!cache.get(&Key::new(&upstreams(2), &q2), &q2, later, &mut out));
        // Expired.
        let gone = t0 + Duration::from_secs(100);
        assert!(!cache.get(&Key::new(&upstreams(1), &q2), &q2, gone, &mut out));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn bounded_and_honours_max_ttl() {
        let cache = Cache::new(8, 1 << 20, 10);
        let t0 = Instant::now();
        for i in 0..20 {
            let p = packet(&format!("n{i:02}.example"), 1);
            let q = parse_query(&p).unwrap();
            let resp = answer(&q, 1000);
            let meta = inspect_response(&resp, q.question).unwrap();
            cache.insert(Key::new(&upstreams(1), &q), &resp, &meta, t0);
            assert!(cache.len() <= 8);
        }
        assert_eq!(cache.bytes(), cache.len() * 45);
        assert!(cache.len() >= 7);
        let p = packet("n19.example", 1);
        let q = parse_query(&p).unwrap();
        let mut out = Vec::new();
        let key = Key::new(&upstreams(1), &q);
        assert!(cache.get(&key, &q, t0 + Duration::from_secs(9), &mut out));
        assert!(!cache.get(&key, &q, t0 + Duration::from_secs(10), &mut out));
    }

    #[test]
    fn bounded_by_bytes() {
        // 45-byte answers, 1440 bytes allowed: at most 32 entries.
        let cache = Cache::new(100, 1440, 10);
        let t0 = Instant::now();
        for i in 0..50 {
            let p = packet(&format!("n{i:02}.example"), 1);
            let q = parse_query(&p).unwrap();
            let resp = answer(&q, 100);
            assert_eq!(resp.len(), 45);
            let meta = inspect_response(&resp, q.question).unwrap();
            cache.insert(Key::new(&upstreams(1), &q), &resp, &meta, t0);
            assert!(cache.bytes() <= 1440, "{}", cache.bytes());
        }
        assert!(cache.len() >= 24, "{}", cache.len());
        // Too big for a sixteenth of the budget: not kept.
        let small = Cache::new(100, 16 * 44, 10);
        let p = packet("n00.example", 1);
        let q = parse_query(&p).unwrap();
        let resp = answer(&q, 100);
        let meta = inspect_response(&resp, q.question).unwrap();
        small.insert(Key::new(&upstreams(1), &q), &resp, &meta, t0);
        assert_eq!(small.len(), 0);
    }

    #[test]
    fn servfail_and_ttl_zero_are_not_kept() {
        let cache = Cache::new(8, 1 << 20, 10);
        let p = packet("x.example", 1);
        let q = parse_query(&p).unwrap();
        let resp = answer(&q, 0);
        let meta = inspect_response(&resp, q.question).unwrap();
        cache.insert(Key::new(&upstreams(1), &q), &resp, &meta, Instant::now());
        let mut out = Vec::new();
        let r = Reply::new(&mut out, &q, rcode::SERVFAIL, false);
        r.finish(None, 512);
        let meta = inspect_response(&out, q.question).unwrap();
        cache.insert(Key::new(&upstreams(1), &q), &out, &meta, Instant::now());
        assert_eq!(cache.len(), 0);
    }
}
