//! A list of element (and netdev chain device) operations encoded as one
//! nfnetlink batch.
//!
//! The datagram is `NFNL_MSG_BATCH_BEGIN`, one `NFT_MSG_NEWSETELEM` or
//! `NFT_MSG_DESTROYSETELEM` per chunk of at most [`MAX_ELEMS`] elements (and
//! about [`MAX_BYTES`] of attributes, well below the 64 KiB limit of one
//! attribute), one `NFT_MSG_NEWCHAIN` or `NFT_MSG_DELCHAIN` per change of a
//! netdev chain's device list, then `NFNL_MSG_BATCH_END`. The kernel applies
//! the whole batch or, if any message fails, none of it.

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};

use super::encode::check_value;
use super::nfnl::Builder;
use super::*;
use crate::Result;

/// Most elements in one message.
pub(super) const MAX_ELEMS: usize = 256;
/// Most bytes of encoded elements in one message.
pub(super) const MAX_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Destroy,
}

/// Elements of one set, sent as one message.
#[derive(Debug, Clone)]
struct Chunk {
    op: Op,
    family: Family,
    table: String,
    set: String,
    elems: Vec<Element>,
}

impl Chunk {
    fn label(&self) -> String {
        let n = self.elems.len();
        let plural = if n == 1 { "" } else { "s" };
        let set = set_label(self.family, &self.table, &self.set);
        match self.op {
            Op::Add => format!("add {n} element{plural} to {set}"),
            Op::Destroy => format!("destroy {n} element{plural} of {set}"),
        }
    }
}

/// Devices added to or removed from a netdev base chain's hook (kernel >= 6.3).
#[derive(Debug, Clone)]
struct Devices {
    op: Op,
    family: Family,
    table: String,
    chain: String,
    hook: Hook,
    names: Vec<String>,
}

/// A base chain's hook, as a chain update must repeat it: `NF_NETDEV_INGRESS`
/// (0) and the priority, for a `filter` chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    pub hooknum: u32,
    pub priority: i32,
}

impl Devices {
    fn label(&self) -> String {
        let names = self.names.join(", ");
        let chain = format!("chain {} {} {}", self.family.name(), self.table, self.chain);
        match self.op {
            Op::Add => format!("add device(s) {names} to {chain}"),
            Op::Destroy => format!("remove device(s) {names} from {chain}"),
        }
    }
}

#[derive(Debug, Clone)]
enum Part {
    Elems(Chunk),
    Devices(Devices),
}

/// Element additions and removals for one or more sets, sent with
/// [`super::Nftables::send`] as one atomic batch: the kernel applies all of
/// them or none. Operations are applied in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    parts: Vec<Part>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds `elems` to `set` (`NFT_MSG_NEWSETELEM` with `NLM_F_CREATE`, no
    /// `NLM_F_EXCL`: re-adding an identical element is not an error; adding
    /// a map key that exists with other data is, `EEXIST`).
    pub fn add(&mut self, family: Family, table: &str, set: &str, elems: &[Element]) {
        self.push(Op::Add, family, table, set, elems);
    }

    /// Removes `elems` from `set` (`NFT_MSG_DESTROYSETELEM`, kernel >= 6.3):
    /// an element that is not there is not an error. Only keys (and
    /// interval flags) are sent; map data is ignored.
    pub fn destroy(&mut self, family: Family, table: &str, set: &str, elems: &[Element]) {
        self.push(Op::Destroy, family, table, set, elems);
    }

    /// Adds devices to the hook of netdev base chain `chain`, creating the
    /// chain with them if it does not exist (`NFT_MSG_NEWCHAIN`, no
    /// `NLM_F_EXCL`). A device already listed is not an error; nor, on kernels
    /// from 6.16, is a name no device has yet (the hook waits for it). An
    /// empty `names` creates the chain with no device, or changes nothing.
    pub fn add_devices(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        hook: Hook,
        names: &[String],
    ) {
        self.devices(Op::Add, family, table, chain, hook, names);
    }

    /// Removes devices from the hook of netdev base chain `chain`
    /// (`NFT_MSG_DELCHAIN` with the hook's device list, kernel 6.3 or later;
    /// older kernels would delete the chain). A name the chain does not list fails
    /// the batch (`ENOENT`). Nothing is sent for an empty `names`.
    pub fn remove_devices(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        hook: Hook,
        names: &[String],
    ) {
        if !names.is_empty() {
            self.devices(Op::Destroy, family, table, chain, hook, names);
        }
    }

    fn devices(
        &mut self,
        op: Op,
        family: Family,
        table: &str,
        chain: &str,
        hook: Hook,
        names: &[String],
    ) {
        self.parts.push(Part::Devices(Devices {
            op,
            family,
            table: table.to_string(),
            chain: chain.to_string(),
            hook,
            names: names.to_vec(),
        }));
    }

    /// The same batch without its device removals.
    pub fn without_device_removals(&self) -> Batch {
        let parts = self
            .parts
            .iter()
            .filter(|p| !matches!(p, Part::Devices(d) if d.op == Op::Destroy))
            .cloned()
            .collect();
        Batch { parts }
    }

    /// Whether the batch removes any device from a chain.
    pub fn removes_devices(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Devices(d) if d.op == Op::Destroy))
    }

    /// True if the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn push(&mut self, op: Op, family: Family, table: &str, set: &str, elems: &[Element]) {
        let mut start = 0;
        while start < elems.len() {
            let mut bytes = 0;
            let mut end = start;
            while end < elems.len() && end - start < MAX_ELEMS {
                let size = encoded_size(&elems[end], op);
                if end > start && bytes + size > MAX_BYTES {
                    break;
                }
                bytes += size;
                end += 1;
            }
            self.parts.push(Part::Elems(Chunk {
                op,
                family,
                table: table.to_string(),
                set: set.to_string(),
                elems: elems[start..end].to_vec(),
            }));
            start = end;
        }
    }

    /// Encodes the batch as one datagram. `seq` hands out sequence numbers:
    /// the first goes to the batch header.
    pub(super) fn encode(&self, mut seq: impl FnMut() -> u32) -> Result<Encoded> {
        let res_id = NFNL_SUBSYS_NFTABLES;
        let header = seq();
        // BATCH_BEGIN/END carry family AF_UNSPEC and the subsystem in res_id.
        let mut out = Builder::new(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, res_id).finish(header);
        let mut labels = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let (msg, label) = match part {
                Part::Elems(chunk) => {
                    check_name("table", &chunk.table)?;
                    check_name("set", &chunk.set)?;
                    (encode_chunk(chunk)?, chunk.label())
                }
                Part::Devices(d) => {
                    check_name("table", &d.table)?;
                    check_name("chain", &d.chain)?;
                    (encode_devices(d)?, d.label())
                }
            };
            let s = seq();
            out.extend(msg.finish(s));
            labels.push((s, label));
        }
        out.extend(Builder::new(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, res_id).finish(seq()));
        Ok(Encoded {
            bytes: out,
            header,
            labels,
        })
    }
}

/// A batch ready to send.
#[derive(Debug)]
pub(super) struct Encoded {
    /// The datagram.
    pub(super) bytes: Vec<u8>,
    /// The sequence number of `NFNL_MSG_BATCH_BEGIN`.
    pub(super) header: u32,
    /// Each element message's sequence number and what it does, for errors.
    pub(super) labels: Vec<(u32, String)>,
}

fn encode_chunk(chunk: &Chunk) -> Result<Builder> {
    let (msg, flags) = match chunk.op {
        Op::Add => (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK),
        Op::Destroy => (NFT_MSG_DESTROYSETELEM, NLM_F_REQUEST | NLM_F_ACK),
    };
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | msg;
    let mut b = Builder::new(kind, flags, chunk.family.nfproto(), 0);
    b.put_str(NFTA_SET_ELEM_LIST_TABLE, &chunk.table);
    b.put_str(NFTA_SET_ELEM_LIST_SET, &chunk.set);
    b.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    for elem in &chunk.elems {
        b.nest(NFTA_LIST_ELEM);
        value(&mut b, NFTA_SET_ELEM_KEY, "key", &elem.key)?;
        if let Some(end) = &elem.key_end {
            value(&mut b, NFTA_SET_ELEM_KEY_END, "key end", end)?;
        }
        if elem.interval_end {
            b.put_be32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        }
        if let (Some(data), Op::Add) = (&elem.data, chunk.op) {
            value(&mut b, NFTA_SET_ELEM_DATA, "data", data)?;
        }
        b.end();
    }
    b.end();
    Ok(b)
}

fn encode_devices(d: &Devices) -> Result<Builder> {
    let (msg, flags) = match d.op {
        Op::Add => (NFT_MSG_NEWCHAIN, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK),
        Op::Destroy => (NFT_MSG_DELCHAIN, NLM_F_REQUEST | NLM_F_ACK),
    };
    for name in &d.names {
        if name.is_empty() || name.len() > IFNAMSIZ - 1 || name.contains('\0') {
            return Err(crate::Error::Invalid(format!(
                "device name {name:?}: must be 1 to {} bytes without NUL",
                IFNAMSIZ - 1
            )));
        }
    }
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | msg;
    let mut b = Builder::new(kind, flags, d.family.nfproto(), 0);
    b.put_str(NFTA_CHAIN_TABLE, &d.table);
    b.put_str(NFTA_CHAIN_NAME, &d.chain);
    b.nest(NFTA_CHAIN_HOOK);
    b.put_be32(NFTA_HOOK_HOOKNUM, d.hook.hooknum);
    b.put_be32(NFTA_HOOK_PRIORITY, d.hook.priority as u32);
    if !d.names.is_empty() {
        b.nest(NFTA_HOOK_DEVS);
        for name in &d.names {
            b.put_str(NFTA_DEVICE_NAME, name);
        }
        b.end();
    }
    b.end();
    b.put_str(NFTA_CHAIN_TYPE, "filter");
    Ok(b)
}

/// A nested `nft_data` attribute holding one `NFTA_DATA_VALUE`.
fn value(b: &mut Builder, kind: u16, what: &str, bytes: &[u8]) -> Result<()> {
    check_value(what, bytes)?;
    b.nest(kind).put(NFTA_DATA_VALUE, bytes).end();
    Ok(())
}

/// Bytes `elem` takes inside `NFTA_SET_ELEM_LIST_ELEMENTS`.
fn encoded_size(elem: &Element, op: Op) -> usize {
    let data = |v: &[u8]| 8 + v.len().next_multiple_of(4);
    let mut size = 4 + data(&elem.key);
    size += elem.key_end.as_deref().map_or(0, data);
    if op == Op::Add {
        size += elem.data.as_deref().map_or(0, data);
    }
    if elem.interval_end {
        size += 8;
    }
    size
}

#[cfg(test)]
mod tests {
    use super::super::nfnl::{messages, Attrs};
    use super::*;

    fn counter() -> impl FnMut() -> u32 {
        let mut n = 99;
        move || {
            n += 1;
            n
        }
    }

    #[test]
    fn batch_layout() {
        let mut batch = Batch::new();
        assert!(batch.is_empty());
        let elem = Element::map(
            vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0],
            vec![172, 17, 0, 2, 0, 80, 0, 0],
        );
        batch.add(Family::Inet, "t", "m_any", std::slice::from_ref(&elem));
        batch.destroy(
            Family::Ip,
            "t",
            "s_v4",
            &encode::prefix("172.18.0.0/16".parse().unwrap()),
        );
        let Encoded {
            bytes,
            header,
            labels,
        } = batch.encode(counter()).unwrap();
        assert_eq!(header, 100);
        assert_eq!(
            labels,
            [
                (101, "add 1 element to set inet t m_any".to_string()),
                (102, "destroy 2 elements of set ip t s_v4".to_string())
            ]
        );
        let (msgs, err) = messages(&bytes);
        assert!(err.is_none());
        let kinds: Vec<_> = msgs.iter().map(|m| (m.kind, m.flags, m.seq)).collect();
        assert_eq!(
            kinds,
            [
                (0x10, NLM_F_REQUEST, 100),
                (0x0a0c, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, 101),
                (0x0a1e, NLM_F_REQUEST | NLM_F_ACK, 102),
                (0x11, NLM_F_REQUEST, 103),
            ]
        );
        // nfgenmsg: family, version 0, res_id big-endian 10 on begin/end.
        assert_eq!(&msgs[0].payload[..4], &[0, 0, 0, 10]);
        assert_eq!(&msgs[3].payload[..4], &[0, 0, 0, 10]);
        assert_eq!(&msgs[1].payload[..4], &[1, 0, 0, 0]);
        assert_eq!(msgs[2].family(), Some(2));

        let attrs = msgs[1].attrs();
        assert_eq!(
            attrs.get_str(NFTA_SET_ELEM_LIST_TABLE).as_deref(),
            Some("t")
        );
        assert_eq!(
            attrs.get_str(NFTA_SET_ELEM_LIST_SET).as_deref(),
            Some("m_any")
        );
        let list: Vec<_> = Attrs(attrs.get(NFTA_SET_ELEM_LIST_ELEMENTS).unwrap()).collect();
        assert_eq!(list.len(), 1);
        let el = Attrs(list[0].1);
        let key = Attrs(el.get(NFTA_SET_ELEM_KEY).unwrap()).get(NFTA_DATA_VALUE);
        assert_eq!(key, Some(&elem.key[..]));
        let data = Attrs(el.get(NFTA_SET_ELEM_DATA).unwrap()).get(NFTA_DATA_VALUE);
        assert_eq!(data, Some(&elem.data.unwrap()[..]));
        assert_eq!(el.get(NFTA_SET_ELEM_FLAGS), None);
        // The nested attributes carry NLA_F_NESTED.
        let raw = attrs.get(NFTA_SET_ELEM_LIST_ELEMENTS).unwrap();
        assert_eq!(u16::from_ne_bytes([raw[2], raw[3]]), 0x8001);

        let list: Vec<_> =
            Attrs(msgs[2].attrs().get(NFTA_SET_ELEM_LIST_ELEMENTS).unwrap()).collect();
        assert_eq!(list.len(), 2);
        assert_eq!(Attrs(list[0].1).get_be32(NFTA_SET_ELEM_FLAGS), None);
        assert_eq!(Attrs(list[1].1).get_be32(NFTA_SET_ELEM_FLAGS), Some(1));
        let end = Attrs(Attrs(list[1].1).get(NFTA_SET_ELEM_KEY).unwrap()).get(NFTA_DATA_VALUE);
        assert_eq!(end, Some(&[172, 19, 0, 0][..]));
    }

    #[test]
    fn ranges_carry_key_end_and_destroy_drops_data() {
        let mut batch = Batch::new();
        let el = Element::range(
            vec![6, 0, 0, 0, 0x1f, 0x40, 0, 0],
            vec![6, 0, 0, 0, 0x1f, 0x4a, 0, 0],
        )
        .with_data(vec![172, 17, 0, 2]);
        batch.destroy(Family::Inet, "t", "r", &[el]);
        let bytes = batch.encode(counter()).unwrap().bytes;
        let (msgs, _) = messages(&bytes);
        let list: Vec<_> =
            Attrs(msgs[1].attrs().get(NFTA_SET_ELEM_LIST_ELEMENTS).unwrap()).collect();
        let el = Attrs(list[0].1);
        let end = Attrs(el.get(NFTA_SET_ELEM_KEY_END).unwrap()).get(NFTA_DATA_VALUE);
        assert_eq!(end, Some(&[6, 0, 0, 0, 0x1f, 0x4a, 0, 0][..]));
        assert_eq!(el.get(NFTA_SET_ELEM_DATA), None);
    }

    impl Batch {
        fn chunks(&self) -> Vec<&Chunk> {
            self.parts
                .iter()
                .filter_map(|p| match p {
                    Part::Elems(c) => Some(c),
                    Part::Devices(_) => None,
                })
                .collect()
        }
    }

    #[test]
    fn chain_devices_are_added_and_removed_by_chain_messages() {
        let hook = Hook {
            hooknum: 0,
            priority: -10,
        };
        let names = ["bth1".to_string(), "bth2".to_string()];
        let mut batch = Batch::new();
        batch.add(Family::Netdev, "t", "m", &[Element::key(vec![1; 4])]);
        batch.add_devices(Family::Netdev, "t", "c", hook, &names);
        batch.remove_devices(Family::Netdev, "t", "c", hook, &names[1..]);
        batch.remove_devices(Family::Netdev, "t", "c", hook, &[]);
        assert!(batch.removes_devices());
        let Encoded { bytes, labels, .. } = batch.encode(counter()).unwrap();
        assert_eq!(labels[1].1, "add device(s) bth1, bth2 to chain netdev t c");
        assert_eq!(labels[2].1, "remove device(s) bth2 from chain netdev t c");
        let (msgs, _) = messages(&bytes);
        let kinds: Vec<_> = msgs.iter().map(|m| (m.kind, m.flags)).collect();
        assert_eq!(
            kinds[2..4],
            [
                (0x0a03, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK),
                (0x0a05, NLM_F_REQUEST | NLM_F_ACK)
            ]
        );
        assert_eq!(msgs[2].family(), Some(5));
        let attrs = msgs[2].attrs();
        assert_eq!(attrs.get_str(NFTA_CHAIN_TABLE).as_deref(), Some("t"));
        assert_eq!(attrs.get_str(NFTA_CHAIN_NAME).as_deref(), Some("c"));
        assert_eq!(attrs.get_str(NFTA_CHAIN_TYPE).as_deref(), Some("filter"));
        let hook_attrs = Attrs(attrs.get(NFTA_CHAIN_HOOK).unwrap());
        assert_eq!(hook_attrs.get_be32(NFTA_HOOK_HOOKNUM), Some(0));
        assert_eq!(hook_attrs.get_be32(NFTA_HOOK_PRIORITY), Some(-10i32 as u32));
        let devs: Vec<_> = Attrs(hook_attrs.get(NFTA_HOOK_DEVS).unwrap())
            .map(|(kind, v)| (kind, v.to_vec()))
            .collect();
        assert_eq!(devs, [(1, b"bth1\0".to_vec()), (1, b"bth2\0".to_vec())]);
        // Dropping the removals leaves the rest in order.
        let kept = batch.without_device_removals();
        assert!(!kept.removes_devices());
        assert_eq!(kept.encode(counter()).unwrap().labels.len(), 2);
        // A name no interface can have is refused before sending.
        let mut bad = Batch::new();
        bad.add_devices(Family::Netdev, "t", "c", hook, &["x".repeat(16)]);
        assert!(matches!(
            bad.encode(counter()),
            Err(crate::Error::Invalid(_))
        ));
    }

    #[test]
    fn large_lists_are_split_into_several_messages() {
        let elems: Vec<_> = (0..1000u32)
            .map(|i| Element::key(i.to_be_bytes().to_vec()))
            .collect();
        let mut batch = Batch::new();
        batch.add(Family::Inet, "t", "s", &elems);
        assert_eq!(batch.chunks().len(), 4);
        let Encoded { bytes, labels, .. } = batch.encode(counter()).unwrap();
        assert_eq!(labels[3].1, "add 232 elements to set inet t s");
        assert_eq!(messages(&bytes).0.len(), 6);
        // Big values: the byte limit splits first.
        let big: Vec<_> = (0..300u16)
            .map(|i| Element::map(vec![i as u8; 64], vec![i as u8; 64]))
            .collect();
        let mut batch = Batch::new();
        batch.add(Family::Inet, "t", "m", &big);
        assert!(batch.chunks().iter().all(|c| c.elems.len() < MAX_ELEMS));
        assert!(batch.chunks().iter().all(|c| c
            .elems
            .iter()
            .map(|e| encoded_size(e, Op::Add))
            .sum::<usize>()
            <= MAX_BYTES));
        assert_eq!(
            batch.chunks().iter().map(|c| c.elems.len()).sum::<usize>(),
            300
        );
        batch.encode(counter()).unwrap();
    }

    #[test]
    fn bad_names_and_values_are_rejected_before_sending() {
        let mut batch = Batch::new();
        batch.add(Family::Inet, "", "s", &[Element::key(vec![1])]);
        assert!(matches!(
            batch.encode(counter()),
            Err(crate::Error::Invalid(_))
        ));
        let mut batch = Batch::new();
        batch.add(Family::Inet, "t", "s", &[Element::key(vec![0; 65])]);
        assert!(matches!(
            batch.encode(counter()),
            Err(crate::Error::Invalid(_))
        ));
        // No elements, no message.
        let mut batch = Batch::new();
        batch.add(Family::Inet, "t", "s", &[]);
        assert!(batch.is_empty());
    }
}
