//! The fast path for JSON sample batches: one pass over the bytes straight into the flat
//! `x` and `u` of a [`SampleBatch`], with no intermediate `Vec<Vec<Option<f64>>>` (one
//! allocation per row) and std's float parsing. It accepts only the plain, valid form of a
//! batch (known keys without escapes, each at most once, rows of the stream's width, a batch
//! that passes validation) and answers `None` for anything else, so the serde path, which
//! owns every error message, decides those. Whenever it answers, it answers what the serde
//! path would: numbers are read by the JSON grammar and rounded correctly (as serde_json's
//! `float_roundtrip` does; `-0` stays negative zero); the property test in `tests` checks it.

use super::{SampleBatch, Shape, Timing, check_rows, check_times};

/// Parses a plain, valid JSON batch; `None` means "ask the serde path".
pub(super) fn parse(body: &[u8], shape: Shape) -> Option<SampleBatch> {
    let text = std::str::from_utf8(body).ok()?;
    let mut c = Cursor { text, bytes: body, at: 0 };
    let (mut seq, mut epoch, mut t, mut t0, mut x, mut u) = (None, None, None, None, None, None);
    c.eat(b'{')?;
    loop {
        match c.key()? {
            b"seq" if seq.is_none() => seq = Some(c.unsigned()?),
            b"epoch" if epoch.is_none() => epoch = Some(c.null_or(Cursor::unsigned)?),
            b"t" if t.is_none() => t = Some(c.null_or(|c| c.numbers())?),
            b"t0" if t0.is_none() => t0 = Some(c.null_or(Cursor::number)?),
            b"x" if x.is_none() => x = Some(c.rows(shape.n, shape.max_samples)?),
            b"u" if u.is_none() => u = Some(c.null_or(|c| c.rows(shape.m, shape.max_samples))?),
            _ => return None,
        }
        match c.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    c.skip_whitespace();
    if c.at != body.len() {
        return None;
    }
    let (x, rows) = x?;
    check_rows(rows, shape).ok()?;
    let timing = match (t.flatten(), t0.flatten()) {
        (Some(_), Some(_)) => return None,
        (Some(t), None) if t.len() == rows && check_times(&t, |_| String::new()).is_ok() => Timing::Explicit(t),
        (Some(_), None) => return None,
        (None, Some(t0)) => Timing::Start(t0),
        (None, None) => Timing::Continue,
    };
    let u = match (u.flatten(), shape.m) {
        (None, 0) => Vec::new(),
        (Some((u, u_rows)), _) if u_rows == rows => u,
        _ => return None,
    };
    Some(SampleBatch { seq: seq?, epoch: epoch.flatten(), timing, rows, x, u })
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

struct Cursor<'a> {
    /// The body (a batch that is not UTF-8 is left to serde).
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// JSON whitespace is exactly these four bytes.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    /// An object key and its colon. Keys with escapes or control bytes are left to serde.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        let len = self.bytes[start..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        // Straight to the closing quote: whitespace inside a key is part of it.
        if self.bytes[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        self.eat(b':')?;
        Some(&self.bytes[start..start + len])
    }

    /// `null` (as `None`) or what `value` reads.
    fn null_or<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal_null()?;
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    fn literal_null(&mut self) -> Option<()> {
        self.skip_whitespace();
        let end = self.at.checked_add(4)?;
        (self.bytes.get(self.at..end)? == b"null").then(|| self.at = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
        self.at - start
    }

    /// A number by the JSON grammar `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`, read
    /// with correct rounding; an overflow to infinity is left to serde (which refuses it).
    /// Most numbers take Clinger's fast path: at most 19 digits whose value is at most 2^53,
    /// scaled by a power of ten up to 10^22, are both exact doubles, so one multiplication
    /// or division rounds correctly. The others go to std's parser (Eisel-Lemire and its
    /// exact fallback), which is correctly rounded too.
    fn number(&mut self) -> Option<f64> {
        self.skip_whitespace();
        let start = self.at;
        let negative = self.bytes.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let int_start = self.at;
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return None,
        }
        let int_end = self.at;
        let mut fraction = int_end..int_end;
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            let len = self.digits();
            if len == 0 {
                return None;
            }
            fraction = self.at - len..self.at;
        }
        let mut exponent = Some(0i32);
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            let sign = match self.bytes.get(self.at) {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            if sign != 0 {
                self.at += 1;
            }
            let len = self.digits();
            if len == 0 {
                return None;
            }
            // Long exponents take the general path.
            exponent = (len <= 4).then(|| {
                let digits = &self.bytes[self.at - len..self.at];
                let value = digits.iter().fold(0i32, |e, &d| e * 10 + i32::from(d - b'0'));
                if sign < 0 { -value } else { value }
            });
        }
        let digits = (int_end - int_start) + fraction.len();
        if let Some(exponent) = exponent
            && digits <= 19
        {
            let all = self.bytes[int_start..int_end].iter().chain(&self.bytes[fraction.clone()]);
            let mantissa = all.fold(0u64, |m, &d| m * 10 + u64::from(d - b'0'));
            let scale = exponent - fraction.len() as i32;
            if mantissa <= 1 << 53 && (-22..=22).contains(&scale) {
                let m = mantissa as f64;
                let value = if scale >= 0 { m * POW10[scale as usize] } else { m / POW10[(-scale) as usize] };
                return Some(if negative { -value } else { value });
            }
        }
        self.text.get(start..self.at)?.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// An unsigned integer (the seq): digits without a leading zero, no fraction or
    /// exponent (serde refuses a float there), within u64.
    fn unsigned(&mut self) -> Option<u64> {
        self.skip_whitespace();
        let start = self.at;
        let len = self.digits();
        if len == 0 || (len > 1 && self.bytes[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.bytes.get(self.at) {
            return None;
        }
        self.text.get(start..self.at)?.parse().ok()
    }

    /// `[number, ...]` (time stamps: no nulls).
    fn numbers(&mut self) -> Option<Vec<f64>> {
        self.eat(b'[')?;
        let mut values = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(values);
        }
        loop {
            values.push(self.number()?);
            match self.next()? {
                b',' => {}
                b']' => return Some(values),
                _ => return None,
            }
        }
    }

    /// `[[v, ...], ...]` with every row exactly `width` values (a number, or null for a
    /// missing value, stored as NaN), flattened row-major; at most `max_rows` rows.
    fn rows(&mut self, width: usize, max_rows: usize) -> Option<(Vec<f64>, usize)> {
        self.eat(b'[')?;
        // Values written by a client usually take 16 bytes or more with their separators:
        // enough room for most batches in one allocation, never more than the body's size.
        let mut values = Vec::with_capacity(if width == 0 { 0 } else { (self.bytes.len() - self.at) / 16 });
        let mut rows = 0;
        if self.peek()? == b']' {
            self.at += 1;
            return Some((values, 0));
        }
        loop {
            if rows == max_rows {
                return None;
            }
            self.eat(b'[')?;
            for j in 0..width {
                if j > 0 {
                    self.eat(b',')?;
                }
                let value = if self.peek()? == b'n' {
                    self.literal_null()?;
                    f64::NAN
                } else {
                    self.number()?
                };
                values.push(value);
            }
            self.eat(b']')?;
            rows += 1;
            match self.next()? {
                b',' => {}
                b']' => return Some((values, rows)),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{SampleBatchBody, from_body};
    use super::*;

    const SHAPE: Shape = Shape { n: 2, m: 1, max_samples: 4 };

    /// The serde path alone: the reference.
    fn slow(body: &[u8], shape: Shape) -> Option<SampleBatch> {
        serde_json::from_slice::<SampleBatchBody>(body).ok().and_then(|b| from_body(b, shape).ok())
    }

    fn same(a: &SampleBatch, b: &SampleBatch) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let timing_bits = |t: &Timing| match t {
            Timing::Explicit(t) => bits(t),
            Timing::Start(t0) => vec![1, t0.to_bits()],
            Timing::Continue => vec![2],
        };
        (a.seq, a.epoch, a.rows, bits(&a.x), bits(&a.u), timing_bits(&a.timing))
            == (b.seq, b.epoch, b.rows, bits(&b.x), bits(&b.u), timing_bits(&b.timing))
    }

    #[test]
    fn plain_batches_parse_like_serde_and_the_rest_is_left_to_it() {
        let accepted: [&[u8]; 10] = [
            br#"{"seq":4,"t":[0,0.1],"x":[[1,2],[3,null]],"u":[[5],[6]]}"#,
            b" {\n\"x\" : [ [ -0 , 1e-400 ] ] , \"u\":[[1.5E+2]],\"seq\":18446744073709551615,\"t0\":null}\t",
            br#"{"seq":0,"t0":-2.5e3,"x":[[0.1,0.30000000000000004]],"u":[[null]]}"#,
            br#"{"seq":1,"t":null,"x":[[9007199254740993,-9223372036854775809]],"u":[[123456789012345678901234567890]]}"#,
            br#"{"seq":1,"x":[[4.9406564584124654e-324,2.2250738585072011e-308]],"u":[[1.7976931348623157e308]]}"#,
            br#"{"seq":1,"x":[[0.1e1,1E5]],"u":[[-1e-7]]}"#,
            br#"{"seq":1,"x":[[9007199254740992e22,9007199254740992e-22]],"u":[[1234567890123456789e-23]]}"#,
            br#"{"seq":1,"x":[[0.00000000000000000001,-0.0e-0]],"u":[[1e0023]]}"#,
            br#"{"seq":1,"epoch":7,"x":[[1,2]],"u":[[1]]}"#,
            br#"{"epoch":null,"seq":1,"x":[[1,2]],"u":[[1]]}"#,
        ];
        for body in accepted {
            let fast = parse(body, SHAPE).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(body)));
            assert!(same(&fast, &slow(body, SHAPE).unwrap()), "{}", String::from_utf8_lossy(body));
        }
        let left: [&[u8]; 16] = [
            br#"{"seq":1,"x":[[1,2]],"u":[[1]],"extra":1}"#,
            b"{\"seq\":1,\"x\":[[1,2]],\"u\t\":[[1]]}",
            br#"{"seq":1,"seq":2,"x":[[1,2]],"u":[[1]]}"#,
            br#"{"\u0073eq":1,"x":[[1,2]],"u":[[1]]}"#,
            br#"{"seq":01,"x":[[1,2]],"u":[[1]]}"#,
            br#"{"seq":1.0,"x":[[1,2]],"u":[[1]]}"#,
            br#"{"seq":1,"x":[[1,2,3]],"u":[[1]]}"#,
            br#"{"seq":1,"x":[[1e400,2]],"u":[[1]]}"#,
            br#"{"seq":1,"x":[[1.,2]],"u":[[1]]}"#,
            br#"{"seq":1,"x":[[+1,2]],"u":[[1]]}"#,
            br#"{"seq":1,"x":[[1,2]]}"#,
            br#"{"seq":1,"t":[1,1],"x":[[1,2],[3,4]],"u":[[1],[1]]}"#,
            br#"{"seq":1,"x":[[1,2]],"u":[[1]]} x"#,
            br#"{"seq":1,"epoch":1.5,"x":[[1,2]],"u":[[1]]}"#,
            br#"{"seq":1,"x":[],"u":[]}"#,
            br#"{"seq":1,"x":[[1,2],[1,2],[1,2],[1,2],[1,2]],"u":[[1],[1],[1],[1],[1]]}"#,
        ];
        for body in left {
            assert!(parse(body, SHAPE).is_none(), "{}", String::from_utf8_lossy(body));
        }
        // Valid for serde, and still left to it (escapes): same result either way.
        assert!(slow(br#"{"\u0073eq":1,"x":[[1,2]],"u":[[1]]}"#, SHAPE).is_some());
    }

    /// A number as a client might write it: shortest form, fixed decimals, exponents,
    /// integers, or random digit strings.
    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| format!("{v}")),
            any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| format!("{v:e}")),
            (-1e6f64..1e6, 0usize..20).prop_map(|(v, d)| format!("{v:.d$}")),
            any::<i64>().prop_map(|v| v.to_string()),
            any::<u64>().prop_map(|v| v.to_string()),
            ("-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?").prop_map(|s| s),
            Just("null".to_owned()),
        ]
    }

    fn body() -> impl Strategy<Value = String> {
        let row = |width: usize| proptest::collection::vec(number_text(), width..=width).prop_map(|v| v.join(","));
        (1usize..4, any::<u64>(), 0u8..3, " ?", ", ?")
            .prop_flat_map(move |(rows, seq, timing, space, comma)| {
                (
                    proptest::collection::vec(row(2), rows..=rows),
                    proptest::collection::vec(row(1), rows..=rows),
                    proptest::collection::vec(0.0f64..1.0, rows..=rows),
                    Just((seq, timing, space, comma)),
                )
            })
            .prop_map(|(x, u, dt, (seq, timing, space, comma))| {
                let rows = |r: Vec<String>| r.iter().map(|r| format!("[{space}{r}]")).collect::<Vec<_>>().join(&comma);
                let time = match timing {
                    0 => String::new(),
                    1 => format!(",{space}\"t0\":{space}12.5"),
                    _ => {
                        let mut t = 0.0;
                        let stamps: Vec<String> = dt
                            .iter()
                            .map(|d| {
                                t += d;
                                format!("{t}")
                            })
                            .collect();
                        format!(",\"t\":[{}]", stamps.join(","))
                    }
                };
                format!("{{\"seq\":{seq}{time},{space}\"x\":[{}],\"u\":[{}]}}", rows(x), rows(u))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The fast path never disagrees with serde: on generated batches it answers and
        /// matches bit for bit; on damaged ones (a byte removed, replaced or inserted) it either
        /// leaves the batch to serde or matches what serde makes of it.
        #[test]
        fn the_fast_path_agrees_with_serde(body in body(), at in any::<prop::sample::Index>(), byte in any::<u8>(), edit in 0u8..4) {
            let shape = Shape { n: 2, m: 1, max_samples: 3 };
            let reference = slow(body.as_bytes(), shape);
            match (parse(body.as_bytes(), shape), &reference) {
                (Some(fast), Some(slow)) => prop_assert!(same(&fast, slow), "{}", body),
                (None, None) => {}
                (fast, slow) => prop_assert!(false, "{body}: fast {fast:?}, slow {slow:?}"),
            }
            let mut damaged = body.into_bytes();
            let i = at.index(damaged.len());
            match edit {
                0 => { damaged.remove(i); }
                1 => damaged[i] = byte,
                2 => damaged.insert(i, byte),
                _ => damaged.insert(i, b"[],:{}\"-.eE0n "[byte as usize % 14]),
            }
            if let Some(fast) = parse(&damaged, shape) {
                let slow = slow(&damaged, shape);
                prop_assert!(slow.as_ref().is_some_and(|s| same(&fast, s)), "{}: fast {fast:?}, slow {slow:?}", damaged.escape_ascii());
            }
        }
    }
}
