//! A minimal NumPy `.npz` writer: a ZIP archive (stored, no compression) of `.npy` arrays
//! (format version 1.0, little-endian float64, complex128 or fixed-width unicode, C order).
//! Text is stored as numpy's own unicode type (`<U`), never as pickled objects, so
//! `np.load` reads every array without `allow_pickle`.

/// One array to store.
pub enum NpyArray<'a> {
    /// float64 with the given shape and row-major data.
    Real { shape: Vec<usize>, data: &'a [f64] },
    /// complex128 with the given shape and row-major (re, im) pairs.
    Complex { shape: Vec<usize>, data: &'a [(f64, f64)] },
    /// Fixed-width unicode (`<U` of the longest string, UTF-32 code points) with the given
    /// shape (`[]` for one string) and row-major strings.
    Text { shape: Vec<usize>, data: &'a [String] },
}

/// The width of a unicode array: its longest string in code points (at least 1, as numpy
/// itself never makes a zero-width unicode type).
fn text_width(data: &[String]) -> usize {
    data.iter().map(|s| s.chars().count()).max().unwrap_or(0).max(1)
}

fn npy(array: &NpyArray<'_>) -> Vec<u8> {
    let (descr, shape) = match array {
        NpyArray::Real { shape, .. } => ("<f8".to_owned(), shape),
        NpyArray::Complex { shape, .. } => ("<c16".to_owned(), shape),
        NpyArray::Text { shape, data } => (format!("<U{}", text_width(data)), shape),
    };
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        0 => "()".to_owned(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + header length (2) + header + newline, padded to 64 bytes.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match array {
        NpyArray::Real { data, .. } => data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        NpyArray::Complex { data, .. } => data.iter().for_each(|(re, im)| {
            out.extend_from_slice(&re.to_le_bytes());
            out.extend_from_slice(&im.to_le_bytes());
        }),
        NpyArray::Text { data, .. } => {
            let width = text_width(data);
            for text in *data {
                let mut count = 0;
                for c in text.chars() {
                    out.extend_from_slice(&u32::from(c).to_le_bytes());
                    count += 1;
                }
                out.resize(out.len() + 4 * (width - count), 0);
            }
        }
    }
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE); archives here are small, so no table is needed.
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Writes the arrays as an `.npz` archive (`name` gets the `.npy` suffix).
pub fn write_npz(arrays: &[(&str, NpyArray<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, array) in arrays {
        let data = npy(array);
        let file_name = format!("{name}.npy");
        let crc = crc32(&data);
        let offset = out.len() as u32;
        let size = data.len() as u32;
        // Local file header: version 2.0, no flags, stored, no time stamp.
        out.extend_from_slice(&0x0403_4B50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(file_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(file_name.as_bytes());
        out.extend_from_slice(&data);
        // Central directory entry.
        central.extend_from_slice(&0x0201_4B50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(file_name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(file_name.as_bytes());
    }
    let central_offset = out.len() as u32;
    let central_size = central.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4B50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(arrays.len() as u16).to_le_bytes());
    out.extend_from_slice(&(arrays.len() as u16).to_le_bytes());
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_layout() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let npy_bytes = npy(&NpyArray::Real { shape: vec![2, 3], data: &data });
        assert_eq!(&npy_bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([npy_bytes[8], npy_bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&npy_bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (2, 3)") && header.ends_with('\n'));
        assert_eq!(npy_bytes.len(), 10 + header_len + 48);
        let archive = write_npz(&[("a", NpyArray::Real { shape: vec![2, 3], data: &data })]);
        assert_eq!(&archive[..4], b"PK\x03\x04");
        assert_eq!(&archive[archive.len() - 22..archive.len() - 18], b"PK\x05\x06");
    }

    #[test]
    fn text_is_fixed_width_utf32() {
        let names = ["x1".to_owned(), "µm/s".to_owned(), String::new()];
        let bytes = npy(&NpyArray::Text { shape: vec![3], data: &names });
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'descr': '<U4'") && header.contains("'shape': (3,)"), "{header}");
        let body = &bytes[10 + header_len..];
        assert_eq!(body.len(), 3 * 4 * 4);
        assert_eq!(&body[..8], &[b'x', 0, 0, 0, b'1', 0, 0, 0]);
        assert_eq!(&body[16..20], &[0xB5, 0, 0, 0]);
        assert!(body[32..].iter().all(|b| *b == 0));
        let empty = npy(&NpyArray::Text { shape: vec![0], data: &[] });
        assert!(std::str::from_utf8(&empty[10..]).unwrap().contains("'descr': '<U1'"));
    }
}
