//! CRC-CCITT as C37.118.2 defines it: polynomial 0x1021, initial value 0xFFFF, no final
//! XOR, bits taken most significant first (the variant also known as CRC-16/CCITT-FALSE).
//!
//! The check runs on every frame of the hot path, so it is table-driven and slices eight
//! bytes at a time: eight independent table look-ups per step instead of a chain of eight
//! dependent ones. `TABLES[k][b]` is the CRC contribution of byte `b` followed by `k` zero
//! bytes; the register is folded into the first two bytes of each slice.

const POLY: u16 = 0x1021;

/// The eight tables of slice-by-8, built at compile time.
static TABLES: [[u16; 256]; 8] = build_tables();

const fn build_tables() -> [[u16; 256]; 8] {
    let mut tables = [[0u16; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ POLY } else { crc << 1 };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev << 8) ^ tables[0][(prev >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

/// The CRC-CCITT of `bytes` (poly 0x1021, init 0xFFFF, no final XOR).
pub fn crc_ccitt(bytes: &[u8]) -> u16 {
    let t = &TABLES;
    let mut crc: u16 = 0xFFFF;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let hi = (crc >> 8) as u8 ^ c[0];
        let lo = crc as u8 ^ c[1];
        crc = t[7][hi as usize]
            ^ t[6][lo as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][((crc >> 8) as u8 ^ b) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bit-at-a-time definition, the reference for the sliced tables.
    fn bitwise(bytes: &[u8]) -> u16 {
        let mut crc: u16 = 0xFFFF;
        for &b in bytes {
            crc ^= u16::from(b) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ POLY } else { crc << 1 };
            }
        }
        crc
    }

    #[test]
    fn known_check_value() {
        // The catalogued check value of CRC-16/CCITT-FALSE.
        assert_eq!(crc_ccitt(b"123456789"), 0x29B1);
        assert_eq!(crc_ccitt(b""), 0xFFFF);
    }

    proptest! {
        #[test]
        fn sliced_equals_bitwise(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(crc_ccitt(&bytes), bitwise(&bytes));
        }
    }
}
