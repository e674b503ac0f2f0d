//! Identifiers, generated names, MAC addresses and timestamps.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// 32 random bytes as 64 lower-case hex characters.
pub(crate) fn new_id() -> String {
    let mut buf = [0u8; 32];
    // Up to 256 bytes come back whole once the pool is ready; before that a signal may
    // interrupt the wait.
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n == buf.len() as isize {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert!(
            e.kind() == std::io::ErrorKind::Interrupted,
            "getrandom: {e}"
        );
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quiet", "sharp", "swift", "tender", "upbeat", "vivid", "witty", "zen",
];
const NOUNS: &[&str] = &[
    "anchor", "buoy", "canal", "delta", "estuary", "fjord", "harbor", "inlet", "jetty", "keel",
    "lagoon", "mooring", "pier", "quay", "reef", "slip", "tide", "wharf", "sound", "strait",
];

/// FNV-1a 64's offset basis.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a 64 of `bytes`, starting from `offset` (the offset basis, or another for another
/// stream).
pub(crate) fn fnv1a(offset: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(offset, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Readable names for a new container with this id, best first: `calm_harbor_3f2a`, the
/// same with four more hex digits, then the id's first 12 characters. The parts come from a
/// hash of the whole id, not from its leading characters: the id of a runtime's container is
/// a hash of the runtime's own id (`external::berth_id`), and for ids such as `ctr1`, `ctr2`
/// its leading characters barely differ, so names made from them met after ~250 containers.
/// A container takes the first that no other has ([`crate::container::free_name`]).
pub(crate) fn names_for(id: &str) -> [String; 3] {
    // FNV-1a over the id, then a 64-bit finaliser (MurmurHash3's fmix64) so that every bit
    // of the id moves every bit of the hash.
    let mut h = fnv1a(FNV_OFFSET, id.as_bytes());
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    let short = format!(
        "{}_{}_{:04x}",
        ADJECTIVES[(h % ADJECTIVES.len() as u64) as usize],
        NOUNS[((h >> 8) % NOUNS.len() as u64) as usize],
        (h >> 16) & 0xffff
    );
    let long = format!("{short}{:04x}", (h >> 32) & 0xffff);
    [short, long, id.chars().take(12).collect()]
}

/// A locally administered unicast MAC: Docker's `02:42` + the IPv4 address, else random.
pub(crate) fn mac_for(addr: Option<IpAddr>) -> [u8; 6] {
    match addr {
        Some(IpAddr::V4(v4)) => {
            let o = v4.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        }
        _ => {
            let id = new_id();
            let mut mac = [0u8; 6];
            for (i, m) in mac.iter_mut().enumerate() {
                *m = u8::from_str_radix(&id[i * 2..i * 2 + 2], 16).unwrap_or(0);
            }
            mac[0] = (mac[0] & 0xfe) | 0x02;
            mac
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub(crate) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<_> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *m = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

/// The current time in RFC 3339 (UTC, seconds).
pub(crate) fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn mac_follows_docker_for_ipv4() {
        let mac = mac_for(Some("172.17.0.2".parse().unwrap()));
        assert_eq!(format_mac(mac), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some(mac));
        let random = mac_for(None);
        assert_eq!(random[0] & 0x03, 0x02, "locally administered unicast");
    }

    #[test]
    fn runtime_ids_that_differ_only_at_the_end_get_distinct_names() {
        // The ids a CNI runtime might use, made into berth ids as the doors do; the names
        // that the ids' leading characters made met at the 273rd of these.
        let ids: Vec<String> = (0..2000)
            .map(|i| crate::container::external::berth_id(&format!("bcni{i}")))
            .collect();
        let short: std::collections::HashSet<_> =
            ids.iter().map(|id| names_for(id)[0].clone()).collect();
        assert_eq!(short.len(), ids.len());
        let [a, b, c] = names_for(&ids[0]);
        assert!(b.starts_with(&a) && b.len() == a.len() + 4, "{a} {b}");
        assert_eq!(c, ids[0][..12]);
        for n in [&a, &b, &c] {
            crate::validate::name("container", n).unwrap();
        }
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
