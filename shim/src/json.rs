//! The little JSON the shim speaks: strings written escaped, and one flat object read back
//! (the agent's reply: strings and numbers, other values skipped).

use alloc::vec::Vec;

/// Appends `s` as a JSON string, quotes included.
pub fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Appends `n` in decimal.
pub fn number(out: &mut Vec<u8>, n: i128) {
    if n < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 40];
    let mut len = 0;
    let mut m = n.unsigned_abs();
    loop {
        digits[len] = b'0' + (m % 10) as u8;
        len += 1;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    out.extend(digits[..len].iter().rev());
}

/// A value of a flat object.
#[derive(Debug, PartialEq)]
pub enum Value {
    /// A string, unescaped (UTF-8, as the JSON text was).
    Str(Vec<u8>),
    /// An integer.
    Int(i128),
    /// Anything else (a fraction, `true`, `null`, an array or object).
    Other,
}

/// The members of the object that is all of `text` (bar white space), in order; `None` when
/// `text` is not one JSON object.
pub fn object(text: &[u8]) -> Option<Vec<(Vec<u8>, Value)>> {
    let mut p = Parser { s: text, i: 0 };
    let mut members = Vec::new();
    p.expect(b'{')?;
    if !p.eat(b'}') {
        loop {
            let key = p.string()?;
            p.expect(b':')?;
            let value = p.value()?;
            members.push((key, value));
            if p.eat(b'}') {
                break;
            }
            p.expect(b',')?;
        }
    }
    p.ws();
    (p.i == text.len()).then_some(members)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.s.get(self.i) == Some(&c);
        self.i += hit as usize;
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn next(&mut self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match *self.s.get(self.i)? {
            b'"' => self.string().map(Value::Str),
            b'-' | b'0'..=b'9' => self.number(),
            b'{' | b'[' => self.nested().map(|()| Value::Other),
            _ => {
                for word in [&b"true"[..], b"false", b"null"] {
                    if self.s[self.i..].starts_with(word) {
                        self.i += word.len();
                        return Some(Value::Other);
                    }
                }
                None
            }
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        let negative = self.s[self.i] == b'-';
        self.i += negative as usize;
        let mut n: i128 = 0;
        let mut digits = 0;
        while let Some(d @ b'0'..=b'9') = self.s.get(self.i) {
            n = n.checked_mul(10)?.checked_add((d - b'0') as i128)?;
            self.i += 1;
            digits += 1;
        }
        if digits == 0 {
            return None;
        }
        if !matches!(self.s.get(self.i), Some(b'.' | b'e' | b'E')) {
            return Some(Value::Int(if negative { -n } else { n }));
        }
        while matches!(
            self.s.get(self.i),
            Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
        ) {
            self.i += 1;
        }
        (self.i > start).then_some(Value::Other)
    }

    /// Skips an array or object, strings inside it included.
    fn nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.next()? {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                b'"' => {
                    self.i -= 1;
                    self.string()?;
                }
                _ => {}
            }
        }
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => return Some(out),
                b'\\' => match self.next()? {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let mut c = self.hex4()?;
                        if (0xd800..0xdc00).contains(&c) {
                            // A surrogate pair: the second half follows as its own escape.
                            if self.next()? != b'\\' || self.next()? != b'u' {
                                return None;
                            }
                            let low = self.hex4()?;
                            if !(0xdc00..0xe000).contains(&low) {
                                return None;
                            }
                            c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
                        }
                        let ch = char::from_u32(c)?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return None,
                },
                0..=0x1f => return None,
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            let d = (self.next()? as char).to_digit(16)?;
            v = v * 16 + d;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_escapes() {
        let text = "a \"quoted\" \\ path\n\ttab \u{1} é 🦀";
        let mut out = Vec::new();
        string(&mut out, text);
        let members = object(&[b"{\"k\":", &out[..], b"}"].concat()).unwrap();
        assert_eq!(
            members,
            [(b"k".to_vec(), Value::Str(text.as_bytes().to_vec()))]
        );
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = Vec::new();
        for n in [0, 7, -12, i64::MAX as i128, u64::MAX as i128] {
            out.clear();
            number(&mut out, n);
            assert_eq!(out, alloc::format!("{n}").into_bytes());
        }
    }

    #[test]
    fn a_flat_object_is_read_and_other_values_skipped() {
        let text = br#" {"code": 1, "stdout":"{\"error\":\"x\"}\n", "skip": [1, {"a": "]"}],
            "f": -1.5e3, "t": true, "n": null, "u": "\u00e9\ud83e\udd80"} "#;
        let m = object(text).unwrap();
        assert_eq!(m[0], (b"code".to_vec(), Value::Int(1)));
        assert_eq!(m[1].1, Value::Str(b"{\"error\":\"x\"}\n".to_vec()));
        assert_eq!(m[2].1, Value::Other);
        assert_eq!(m[3].1, Value::Other);
        assert_eq!(m[6].1, Value::Str("é🦀".as_bytes().to_vec()));
        assert_eq!(object(b"{}").unwrap(), []);
    }

    #[test]
    fn what_is_not_one_object_is_refused() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\":1,}",
            b"{\"a\":1} x",
            b"[1]",
            b"{\"a\":\"\\q\"}",
            b"{\"a\":\"\\ud800x\"}",
            b"{\"a\":-}",
            b"{\"a\":\"raw\nnewline\"}",
        ] {
            assert_eq!(object(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
