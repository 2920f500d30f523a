//! A minimal MATLAB Level-5 `.mat` writer: the 128-byte header, then one uncompressed
//! `miMATRIX` element per variable (double and complex double matrices, char arrays, cell
//! arrays of char). Enough for MATLAB's `load` and `scipy.io.loadmat`; nothing is read.
//!
//! Layout (little-endian, as the header's "IM" says): every data element is an 8-byte tag
//! (type, byte count) followed by its data padded to a multiple of 8 bytes. A matrix holds
//! the array flags, the dimensions, the name and the data, each an element of its own; a
//! cell holds one nameless matrix per entry, in column-major order.

/// Data types of the tags (MAT-file format, table 1-1).
const MI_INT8: u32 = 1;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_DOUBLE: u32 = 9;
const MI_MATRIX: u32 = 14;

/// Array classes (MAT-file format, table 1-3).
const MX_CELL: u8 = 1;
const MX_CHAR: u8 = 4;
const MX_DOUBLE: u8 = 6;

/// The complex bit of the array flags' flag byte.
const COMPLEX: u8 = 0x08;

/// Longest variable name MATLAB accepts.
pub const MAX_NAME_LEN: usize = 63;

/// One variable's value. Matrices are `rows` x `cols` with data in column-major order, as
/// MATLAB stores them.
#[derive(Debug, Clone, Copy)]
pub enum MatValue<'a> {
    /// A double matrix.
    Double {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// rows * cols values, column after column.
        data: &'a [f64],
    },
    /// A complex double matrix, real and imaginary parts apart.
    Complex {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Real parts, column-major.
        re: &'a [f64],
        /// Imaginary parts, column-major.
        im: &'a [f64],
    },
    /// A 1 x len char array (0 x 0 when empty, as MATLAB writes `''`).
    Text(&'a str),
    /// A len x 1 cell array of char arrays (a list of names).
    Texts(&'a [String]),
}

/// Why a file cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatError {
    /// Not a MATLAB identifier: a letter, then letters, digits and underscores, at most 63.
    #[error("`{0}` is not a MATLAB variable name")]
    BadName(String),
    /// The data length does not match the dimensions.
    #[error("variable `{name}`: {len} values do not fill {rows} x {cols}")]
    Shape {
        /// The variable.
        name: String,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Values given.
        len: usize,
    },
    /// A dimension or an element larger than the format's 32-bit fields hold.
    #[error("variable `{0}` is too large for a Level-5 MAT file")]
    TooLarge(String),
}

/// Writes the variables, in order, as a Level-5 MAT file. `description` fills the header's
/// text (cut to 116 bytes).
pub fn write_mat(description: &str, variables: &[(&str, MatValue<'_>)]) -> Result<Vec<u8>, MatError> {
    let mut out = Vec::new();
    let mut text = [b' '; 116];
    let cut = description.len().min(116);
    text[..cut].copy_from_slice(&description.as_bytes()[..cut]);
    out.extend_from_slice(&text);
    // Subsystem data offset: none (all spaces or all zeros both mean none).
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    // The endian indicator: the characters 'M' 'I' written as one 16-bit value.
    out.extend_from_slice(&u16::from_le_bytes(*b"IM").to_le_bytes());
    for (name, value) in variables {
        if !valid_name(name) {
            return Err(MatError::BadName((*name).to_owned()));
        }
        matrix(&mut out, name, value)?;
    }
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_NAME_LEN
}

/// One data element: tag, data, padding to 8 bytes.
fn element(out: &mut Vec<u8>, kind: u32, data: &[u8]) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len()), 0);
}

fn padding(len: usize) -> usize {
    (8 - len % 8) % 8
}

fn doubles(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A `miMATRIX` element: its byte count is known only once its body is written, so the
/// body is written after a placeholder tag and the count filled in.
fn matrix(out: &mut Vec<u8>, name: &str, value: &MatValue<'_>) -> Result<(), MatError> {
    let too_large = || MatError::TooLarge(name.to_owned());
    let start = out.len();
    out.extend_from_slice(&MI_MATRIX.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let (class, flags, rows, cols) = match value {
        MatValue::Double { rows, cols, .. } => (MX_DOUBLE, 0, *rows, *cols),
        MatValue::Complex { rows, cols, .. } => (MX_DOUBLE, COMPLEX, *rows, *cols),
        MatValue::Text(text) => {
            let len = text.encode_utf16().count();
            (MX_CHAR, 0, usize::from(len > 0), len)
        }
        MatValue::Texts(items) => (MX_CELL, 0, items.len(), 1),
    };
    let shape_error = |len: usize| MatError::Shape { name: name.to_owned(), rows, cols, len };
    let count = rows.checked_mul(cols).ok_or_else(too_large)?;
    let mut flag_word = [0u8; 8];
    flag_word[0] = class;
    flag_word[1] = flags;
    element(out, MI_UINT32, &flag_word);
    let mut dims = Vec::with_capacity(8);
    for d in [rows, cols] {
        dims.extend_from_slice(&i32::try_from(d).map_err(|_| too_large())?.to_le_bytes());
    }
    element(out, MI_INT32, &dims);
    element(out, MI_INT8, name.as_bytes());
    match value {
        MatValue::Double { data, .. } => {
            if data.len() != count {
                return Err(shape_error(data.len()));
            }
            element(out, MI_DOUBLE, &doubles(data));
        }
        MatValue::Complex { re, im, .. } => {
            if re.len() != count || im.len() != count {
                return Err(shape_error(re.len().min(im.len())));
            }
            element(out, MI_DOUBLE, &doubles(re));
            element(out, MI_DOUBLE, &doubles(im));
        }
        // UTF-16 code units as miUINT16, the encoding MATLAB itself writes char data in.
        MatValue::Text(text) => {
            let units: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
            element(out, MI_UINT16, &units);
        }
        MatValue::Texts(items) => {
            for item in *items {
                matrix(out, "", &MatValue::Text(item))?;
            }
        }
    }
    let body = out.len() - start - 8;
    let body = u32::try_from(body).map_err(|_| too_large())?;
    out[start + 4..start + 8].copy_from_slice(&body.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tag at `at`: (type, byte count).
    fn tag(bytes: &[u8], at: usize) -> (u32, usize) {
        let word = |k: usize| u32::from_le_bytes(bytes[k..k + 4].try_into().unwrap());
        (word(at), word(at + 4) as usize)
    }

    #[test]
    fn header_says_level_5_little_endian() {
        let bytes = write_mat("MATLAB 5.0 MAT-file, test", &[]).unwrap();
        assert_eq!(bytes.len(), 128);
        assert!(bytes.starts_with(b"MATLAB 5.0 MAT-file, test  "));
        assert_eq!(&bytes[124..128], &[0x00, 0x01, b'I', b'M']);
    }

    #[test]
    fn a_double_matrix_is_flags_dims_name_and_column_major_data() {
        // [1 2 3; 4 5 6] column-major.
        let data = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
        let bytes = write_mat("", &[("A", MatValue::Double { rows: 2, cols: 3, data: &data })]).unwrap();
        let m = 128;
        // Flags (16) + dims (16) + name (8 + 8 padded) + data (8 + 48).
        assert_eq!(tag(&bytes, m), (MI_MATRIX, 16 + 16 + 16 + 56));
        assert_eq!(bytes.len(), m + 8 + 104);
        assert_eq!(tag(&bytes, m + 8), (MI_UINT32, 8));
        assert_eq!(bytes[m + 16], MX_DOUBLE);
        assert_eq!(tag(&bytes, m + 24), (MI_INT32, 8));
        assert_eq!(&bytes[m + 32..m + 40], &[2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(tag(&bytes, m + 40), (MI_INT8, 1));
        assert_eq!(&bytes[m + 48..m + 56], b"A\0\0\0\0\0\0\0");
        assert_eq!(tag(&bytes, m + 56), (MI_DOUBLE, 48));
        assert_eq!(f64::from_le_bytes(bytes[m + 72..m + 80].try_into().unwrap()), 4.0);
    }

    #[test]
    fn complex_text_and_cells() {
        let (re, im) = ([0.5, 1.0], [0.25, -0.25]);
        let names = ["x1".to_owned(), String::new(), "µm".to_owned()];
        let vars = [
            ("lambda", MatValue::Complex { rows: 2, cols: 1, re: &re, im: &im }),
            ("spec", MatValue::Text("state,const")),
            ("names", MatValue::Texts(&names)),
        ];
        let bytes = write_mat("", &vars).unwrap();
        // Every element ends on an 8-byte boundary, and the top-level ones tile the file.
        let mut at = 128;
        let mut kinds = Vec::new();
        while at < bytes.len() {
            let (kind, len) = tag(&bytes, at);
            assert_eq!(len % 8, 0);
            kinds.push((kind, bytes[at + 16], bytes[at + 17]));
            at += 8 + len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(kinds, [(MI_MATRIX, MX_DOUBLE, COMPLEX), (MI_MATRIX, MX_CHAR, 0), (MI_MATRIX, MX_CELL, 0)]);
        // The text is 1 x 11 UTF-16 code units.
        let text = bytes.windows(22).position(|w| w == b"s\0t\0a\0t\0e\0,\0c\0o\0n\0s\0t\0").unwrap();
        assert_eq!(tag(&bytes, text - 8), (MI_UINT16, 22));
        // The empty entry is a 0 x 0 char array; the micro sign is one code unit.
        assert!(bytes.windows(4).any(|w| w == [0xB5, 0, b'm', 0]));
    }

    #[test]
    fn refusals() {
        let ok = MatValue::Double { rows: 1, cols: 1, data: &[1.0] };
        assert_eq!(write_mat("", &[("1a", ok)]), Err(MatError::BadName("1a".into())));
        assert_eq!(write_mat("", &[("a-b", ok)]), Err(MatError::BadName("a-b".into())));
        assert!(matches!(write_mat("", &[(&"a".repeat(64), ok)]), Err(MatError::BadName(_))));
        let short = MatValue::Double { rows: 2, cols: 2, data: &[1.0] };
        assert!(matches!(write_mat("", &[("a", short)]), Err(MatError::Shape { len: 1, .. })));
    }
}
