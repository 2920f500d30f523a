//! A model document as named arrays for numerical tools: one list of variables, written
//! as a MATLAB `.mat` file or a NumPy `.npz` archive, so both files carry exactly the same
//! content (the state-space matrices, the read-out, the names and units, and the complete
//! lifting: standardisation, monomial powers, RBF centres, Fourier features, delays).

use koopman::DictionarySpec;

use crate::mat::{MatError, MatValue, write_mat};
use crate::model_doc::{MatrixDoc, ModelDoc};
use crate::npz::{NpyArray, write_npz};

/// One exported value, before it takes a file format's shape.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportValue {
    /// A rows x cols matrix, row-major (`.mat`: the same matrix; `.npz`: 2-D).
    Matrix {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Entries, row after row.
        data: Vec<f64>,
    },
    /// A list of numbers (`.mat`: a column; `.npz`: 1-D); empty when absent.
    Vector(Vec<f64>),
    /// One number (`.mat`: 1 x 1; `.npz`: 0-D).
    Scalar(f64),
    /// A list of complex numbers (`.mat`: a complex column; `.npz`: 1-D complex128).
    Complex(Vec<(f64, f64)>),
    /// A string (`.mat`: a char row; `.npz`: 0-D unicode).
    Text(String),
    /// A list of strings (`.mat`: a cell column of char; `.npz`: 1-D unicode).
    Texts(Vec<String>),
}

/// The names of the exported variables, in the order the files hold them.
pub const EXPORTED: [&str; 22] = [
    "A",
    "B",
    "C",
    "D",
    "Ts",
    "c_offset",
    "eigenvalues",
    "state_names",
    "input_names",
    "state_units",
    "input_units",
    "observables",
    "std_mean",
    "std_scale",
    "dictionary",
    "poly_exponents",
    "rbf_centres",
    "rbf_width",
    "fourier_w",
    "fourier_b",
    "delay",
    "format",
];

fn matrix(m: &MatrixDoc) -> ExportValue {
    ExportValue::Matrix { rows: m.rows, cols: m.cols, data: m.data.clone() }
}

/// Units parallel to `names`: a document written before units were kept has none, and a
/// reader indexing units by channel should still find one ("") per channel.
fn units(names: &[String], units: &[String]) -> ExportValue {
    let mut units = units.to_vec();
    units.resize(names.len(), String::new());
    ExportValue::Texts(units)
}

/// The variables of a model document (see [`EXPORTED`] for the order).
pub fn export_values(doc: &ModelDoc) -> Vec<(&'static str, ExportValue)> {
    let d = &doc.dictionary;
    let n = doc.state_channels.len();
    let m = doc.input_channels.len();
    let empty = |rows: usize| ExportValue::Matrix { rows, cols: n, data: Vec::new() };
    // Documents from before the delay count was exported still name it in their spec.
    let delay =
        d.delay.unwrap_or_else(|| d.spec.parse::<DictionarySpec>().ok().and_then(|s| s.delay).map_or(0, |v| v as u64));
    let (std_mean, std_scale) = match &d.standardisation {
        Some(s) => (s.mean.clone(), s.scale.clone()),
        None => (Vec::new(), Vec::new()),
    };
    vec![
        ("A", matrix(&doc.a)),
        ("B", matrix(&doc.b)),
        ("C", matrix(&doc.c)),
        ("D", ExportValue::Matrix { rows: doc.c.rows, cols: m, data: vec![0.0; doc.c.rows * m] }),
        ("Ts", ExportValue::Scalar(doc.ts)),
        ("c_offset", ExportValue::Vector(doc.c_offset.clone())),
        ("eigenvalues", ExportValue::Complex(doc.eigenvalues.iter().map(|e| (e.re, e.im)).collect())),
        ("state_names", ExportValue::Texts(doc.state_channels.clone())),
        ("input_names", ExportValue::Texts(doc.input_channels.clone())),
        ("state_units", units(&doc.state_channels, &doc.state_units)),
        ("input_units", units(&doc.input_channels, &doc.input_units)),
        ("observables", ExportValue::Texts(d.observables.clone())),
        ("std_mean", ExportValue::Vector(std_mean)),
        ("std_scale", ExportValue::Vector(std_scale)),
        ("dictionary", ExportValue::Text(d.spec.clone())),
        (
            "poly_exponents",
            d.poly_exponents.as_ref().map_or_else(
                || empty(0),
                |e| ExportValue::Matrix {
                    rows: e.rows,
                    cols: e.cols,
                    data: e.data.iter().map(|&p| f64::from(p)).collect(),
                },
            ),
        ),
        ("rbf_centres", d.rbf.as_ref().map_or_else(|| empty(0), |r| matrix(&r.centres))),
        ("rbf_width", d.rbf.as_ref().map_or_else(|| ExportValue::Vector(Vec::new()), |r| ExportValue::Scalar(r.width))),
        ("fourier_w", d.fourier.as_ref().map_or_else(|| empty(0), |f| matrix(&f.w))),
        ("fourier_b", ExportValue::Vector(d.fourier.as_ref().map(|f| f.b.clone()).unwrap_or_default())),
        ("delay", ExportValue::Scalar(delay as f64)),
        ("format", ExportValue::Text(doc.format.clone())),
    ]
}

/// Why a model cannot be exported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    /// A matrix whose data does not fill its shape (the server never writes one).
    #[error("`{name}`: {len} values do not fill {rows} x {cols}")]
    Shape {
        /// The variable.
        name: &'static str,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Values held.
        len: usize,
    },
    /// The MAT writer refused it.
    #[error(transparent)]
    Mat(#[from] MatError),
}

fn check(values: &[(&'static str, ExportValue)]) -> Result<(), ExportError> {
    for (name, value) in values {
        if let ExportValue::Matrix { rows, cols, data } = value
            && rows.checked_mul(*cols) != Some(data.len())
        {
            return Err(ExportError::Shape { name, rows: *rows, cols: *cols, len: data.len() });
        }
    }
    Ok(())
}

/// The model as a MATLAB Level-5 `.mat` file.
pub fn to_mat(doc: &ModelDoc) -> Result<Vec<u8>, ExportError> {
    let values = export_values(doc);
    check(&values)?;
    // MATLAB stores matrices column-major; the document's are row-major.
    let column_major: Vec<Option<Vec<f64>>> = values
        .iter()
        .map(|(_, v)| match v {
            ExportValue::Matrix { rows, cols, data } => {
                Some((0..rows * cols).map(|k| data[(k % rows) * cols + k / rows]).collect())
            }
            _ => None,
        })
        .collect();
    let complex: Vec<Option<(Vec<f64>, Vec<f64>)>> = values
        .iter()
        .map(|(_, v)| match v {
            ExportValue::Complex(c) => Some(c.iter().copied().unzip()),
            _ => None,
        })
        .collect();
    let variables: Vec<(&str, MatValue<'_>)> = values
        .iter()
        .zip(&column_major)
        .zip(&complex)
        .map(|(((name, value), cm), cx)| {
            let mat = match (value, cm, cx) {
                (ExportValue::Matrix { rows, cols, .. }, Some(data), _) => {
                    MatValue::Double { rows: *rows, cols: *cols, data }
                }
                (ExportValue::Vector(v), ..) => MatValue::Double { rows: v.len(), cols: 1, data: v },
                (ExportValue::Scalar(v), ..) => MatValue::Double { rows: 1, cols: 1, data: std::slice::from_ref(v) },
                (ExportValue::Complex(c), _, Some((re, im))) => MatValue::Complex { rows: c.len(), cols: 1, re, im },
                (ExportValue::Text(t), ..) => MatValue::Text(t),
                (ExportValue::Texts(t), ..) => MatValue::Texts(t),
                _ => unreachable!("matrices and complex lists were converted above"),
            };
            (*name, mat)
        })
        .collect();
    Ok(write_mat(&format!("MATLAB 5.0 MAT-file, written by koopstream: {}", doc.format), &variables)?)
}

/// The model as a NumPy `.npz` archive with the same variables as [`to_mat`].
pub fn to_npz(doc: &ModelDoc) -> Result<Vec<u8>, ExportError> {
    let values = export_values(doc);
    check(&values)?;
    let texts: Vec<Option<Vec<String>>> = values
        .iter()
        .map(|(_, v)| match v {
            ExportValue::Text(t) => Some(vec![t.clone()]),
            _ => None,
        })
        .collect();
    let arrays: Vec<(&str, NpyArray<'_>)> = values
        .iter()
        .zip(&texts)
        .map(|((name, value), text)| {
            let array = match (value, text) {
                (ExportValue::Matrix { rows, cols, data }, _) => NpyArray::Real { shape: vec![*rows, *cols], data },
                (ExportValue::Vector(v), _) => NpyArray::Real { shape: vec![v.len()], data: v },
                (ExportValue::Scalar(v), _) => NpyArray::Real { shape: vec![], data: std::slice::from_ref(v) },
                (ExportValue::Complex(c), _) => NpyArray::Complex { shape: vec![c.len()], data: c },
                (ExportValue::Text(_), Some(t)) => NpyArray::Text { shape: vec![], data: t },
                (ExportValue::Texts(t), _) => NpyArray::Text { shape: vec![t.len()], data: t },
                (ExportValue::Text(_), None) => unreachable!("every text was listed above"),
            };
            (*name, array)
        })
        .collect();
    Ok(write_npz(&arrays))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document written before units and the lifting were exported.
    const OLDER: &str = r#"{"format": "koopstream.model.v1", "ts": 0.5, "state_channels": ["a", "b"],
        "input_channels": [], "dictionary": {"spec": "state,delay:2", "observables": ["a", "b",
        "a[k-1]", "b[k-1]", "a[k-2]", "b[k-2]"], "standardisation": null}, "mu": 0.0, "forgetting": 1.0,
        "window": null, "pairs": 3, "a": {"rows": 1, "cols": 1, "data": [0.5]},
        "b": {"rows": 1, "cols": 0, "data": []}, "c": {"rows": 1, "cols": 1, "data": [1.0]},
        "c_offset": [0.0], "eigenvalues": [], "residual_rms": null}"#;

    #[test]
    fn an_older_document_still_reads_and_exports() {
        let doc: ModelDoc = serde_json::from_str(OLDER).unwrap();
        assert!(
            doc.state_units.is_empty() && doc.dictionary.poly_exponents.is_none() && doc.dictionary.delay.is_none()
        );
        let values = export_values(&doc);
        assert_eq!(values.iter().map(|(name, _)| *name).collect::<Vec<_>>(), EXPORTED);
        let value = |name: &str| values.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(value("delay"), ExportValue::Scalar(2.0), "from the spec");
        assert_eq!(value("state_units"), ExportValue::Texts(vec![String::new(), String::new()]));
        assert_eq!(value("std_mean"), ExportValue::Vector(Vec::new()));
        assert_eq!(value("rbf_centres"), ExportValue::Matrix { rows: 0, cols: 2, data: Vec::new() });
        assert!(to_mat(&doc).is_ok() && to_npz(&doc).is_ok());
    }

    #[test]
    fn a_matrix_that_does_not_fill_its_shape_is_refused() {
        let mut doc: ModelDoc = serde_json::from_str(OLDER).unwrap();
        doc.a.data.clear();
        let refused = Err(ExportError::Shape { name: "A", rows: 1, cols: 1, len: 0 });
        assert_eq!(to_mat(&doc), refused);
        assert_eq!(to_npz(&doc), refused);
    }
}
