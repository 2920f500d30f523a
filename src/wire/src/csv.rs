//! The one CSV grammar, for files (`koopstream fit`, `bench-online`) and HTTP bodies alike:
//! a header row naming the columns (`t` optional), then one sample per line. Values are
//! parsed without allocating per row; errors name the line and column. An empty cell or
//! `NaN` is a dropout (a gap), anything else non-numeric is an error; a column named twice
//! is refused.

use std::io::BufRead;

use domain::batch::{SampleBatch, Shape, Timing, check_rows, check_times};
use domain::definition::StreamDefinition;
use domain::error::DomainError;

/// A file that cannot be read as samples.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The underlying reader failed.
    #[error("line {line}: cannot read: {source}")]
    Io {
        /// 1-based line number.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No header line.
    #[error("the file is empty; expected a header line naming the columns")]
    Empty,
    /// A column named twice in the header.
    #[error("line 1: column `{0}` appears twice in the header")]
    DuplicateColumn(String),
    /// A column that was asked for is not in the header.
    #[error("line 1: no column named `{name}` (the header has: {available})")]
    MissingColumn {
        /// The missing name.
        name: String,
        /// The header's columns.
        available: String,
    },
    /// A row with the wrong number of cells.
    #[error("line {line}: {got} cells, the header has {expected} columns")]
    CellCount {
        /// 1-based line number.
        line: u64,
        /// Cells in the header.
        expected: usize,
        /// Cells in the row.
        got: usize,
    },
    /// A cell that is not a number.
    #[error("line {line}, column `{column}`: `{cell}` is not a number")]
    NotANumber {
        /// 1-based line number.
        line: u64,
        /// The column's name.
        column: String,
        /// The cell's text.
        cell: String,
    },
}

impl CsvError {
    /// Where the error is, as a JSON pointer over the body read as lines of named cells:
    /// `/<line>/<column>` with the 1-based line number the message names (the header is
    /// line 1), `/<line>` for a whole row (`/1` for the header an empty body lacks); `None`
    /// when the body cannot be read as text.
    pub fn pointer(&self) -> Option<String> {
        use domain::error::pointer;
        match self {
            Self::Io { .. } => None,
            Self::Empty => Some(pointer(["1"])),
            Self::DuplicateColumn(column) => Some(pointer(["1", column])),
            Self::MissingColumn { name, .. } => Some(pointer(["1", name])),
            Self::CellCount { line, .. } => Some(pointer([line])),
            Self::NotANumber { line, column, .. } => Some(pointer([line.to_string(), column.clone()])),
        }
    }
}

/// The header, and which columns hold time, states and inputs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// All column names, in file order.
    pub columns: Vec<String>,
    /// Index of the `t` column, if any.
    pub time: Option<usize>,
    /// Indices of the state channels.
    pub states: Vec<usize>,
    /// Indices of the input channels.
    pub inputs: Vec<usize>,
}

impl Layout {
    /// Names of the state channels.
    pub fn state_names(&self) -> Vec<String> {
        self.states.iter().map(|&i| self.columns[i].clone()).collect()
    }

    /// Names of the input channels.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|&i| self.columns[i].clone()).collect()
    }
}

/// One parsed row. `None` entries are dropouts.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Time stamp, when the file has a `t` column.
    pub t: Option<f64>,
    /// State values (NaN for a dropout).
    pub x: Vec<f64>,
    /// Input values (NaN for a dropout).
    pub u: Vec<f64>,
}

impl Row {
    /// Whether any value is missing.
    pub fn has_dropout(&self) -> bool {
        self.x.iter().chain(&self.u).any(|v| !v.is_finite())
    }
}

/// Reads rows one at a time from any buffered reader.
pub struct SampleReader<R> {
    reader: R,
    layout: Layout,
    /// The current line as bytes: rows are ASCII numbers, so cells are checked as UTF-8 one
    /// at a time instead of validating and copying whole lines into a `String`.
    line: Vec<u8>,
    line_number: u64,
    cells: Vec<f64>,
    bytes_read: u64,
}

fn strip_quotes(cell: &str) -> &str {
    let cell = cell.trim();
    cell.strip_prefix('"').and_then(|c| c.strip_suffix('"')).unwrap_or(cell)
}

/// The byte-level twin of [`strip_quotes`] for data cells.
fn strip_quotes_bytes(cell: &[u8]) -> &[u8] {
    let cell = cell.trim_ascii();
    cell.strip_prefix(b"\"").and_then(|c| c.strip_suffix(b"\"")).unwrap_or(cell)
}

impl<R: BufRead> SampleReader<R> {
    /// Reads the header. `states` selects the state columns (default: every column that is
    /// neither `t` nor an input); `inputs` names the input columns.
    pub fn new(mut reader: R, states: Option<&[String]>, inputs: &[String]) -> Result<Self, CsvError> {
        let mut line = String::new();
        let read = reader.read_line(&mut line).map_err(|source| CsvError::Io { line: 1, source })?;
        if read == 0 || line.trim().is_empty() {
            return Err(CsvError::Empty);
        }
        let columns: Vec<String> = line
            .trim_end_matches(['\n', '\r'])
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(|c| strip_quotes(c).to_owned())
            .collect();
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(CsvError::DuplicateColumn(c.clone()));
            }
        }
        let find = |name: &String| {
            columns
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| CsvError::MissingColumn { name: name.clone(), available: columns.join(", ") })
        };
        let time = columns.iter().position(|c| c == "t");
        let inputs = inputs.iter().map(find).collect::<Result<Vec<_>, _>>()?;
        let states = match states {
            Some(names) => names.iter().map(find).collect::<Result<Vec<_>, _>>()?,
            None => (0..columns.len()).filter(|i| Some(*i) != time && !inputs.contains(i)).collect(),
        };
        let cells = vec![0.0; columns.len()];
        Ok(Self {
            reader,
            layout: Layout { columns, time, states, inputs },
            line: line.into_bytes(),
            line_number: 1,
            cells,
            bytes_read: read as u64,
        })
    }

    /// The columns.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Bytes consumed so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The line number of the last row returned.
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// Reads the next row into `row`; `Ok(false)` at the end. Blank lines are skipped.
    pub fn next_row(&mut self, row: &mut Row) -> Result<bool, CsvError> {
        loop {
            self.line.clear();
            self.line_number += 1;
            let read = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|source| CsvError::Io { line: self.line_number, source })?;
            if read == 0 {
                return Ok(false);
            }
            self.bytes_read += read as u64;
            let text = self.line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let mut count = 0;
            for (i, cell) in text.split(|b| *b == b',').enumerate() {
                count += 1;
                if i >= self.cells.len() {
                    continue;
                }
                let cell = strip_quotes_bytes(cell);
                self.cells[i] = if cell.is_empty() || cell.eq_ignore_ascii_case(b"nan") {
                    f64::NAN
                } else {
                    match std::str::from_utf8(cell).ok().and_then(|c| c.parse::<f64>().ok()) {
                        Some(v) if v.is_finite() => v,
                        _ => {
                            return Err(CsvError::NotANumber {
                                line: self.line_number,
                                column: self.layout.columns[i].clone(),
                                cell: String::from_utf8_lossy(cell).into_owned(),
                            });
                        }
                    }
                };
            }
            if count != self.cells.len() {
                return Err(CsvError::CellCount { line: self.line_number, expected: self.cells.len(), got: count });
            }
            row.t = self.layout.time.map(|i| self.cells[i]);
            row.x.clear();
            row.x.extend(self.layout.states.iter().map(|&i| self.cells[i]));
            row.u.clear();
            row.u.extend(self.layout.inputs.iter().map(|&i| self.cells[i]));
            return Ok(true);
        }
    }
}

/// Parses CSV with a header naming `t` (optional), every state channel and every input;
/// `seq` comes from the query. The rows are read by the same [`SampleReader`] as
/// `koopstream fit`, so both follow one grammar: an empty cell or `NaN` is a missing value,
/// a column named twice is refused, every error names the line and column.
pub fn parse_batch(
    body: &[u8],
    seq: u64,
    definition: &StreamDefinition,
    max_samples: usize,
) -> Result<SampleBatch, DomainError> {
    parse_batch_with(body, seq, definition, max_samples, false)
}

/// [`parse_batch`], with columns the stream does not know ignored when
/// `allow_unknown_columns` (refused otherwise, naming them: a misspelt channel would
/// otherwise be dropped without a word).
pub fn parse_batch_with(
    body: &[u8],
    seq: u64,
    definition: &StreamDefinition,
    max_samples: usize,
    allow_unknown_columns: bool,
) -> Result<SampleBatch, DomainError> {
    let shape = Shape::of(definition, max_samples);
    // Located errors are the header's, rows' and cells' (422; an empty body lacks its
    // header, line 1); a body that cannot be read as text is malformed (400).
    let refused = |e: CsvError| match e.pointer() {
        Some(pointer) => DomainError::invalid(format!("CSV {e}")).at(pointer),
        None => DomainError::malformed(format!("the CSV body cannot be read: {e}")),
    };
    let states: Vec<String> = definition.channels.iter().map(|c| c.name.clone()).collect();
    let inputs: Vec<String> = definition.inputs.iter().map(|c| c.name.clone()).collect();
    let mut reader = SampleReader::new(body, Some(&states), &inputs).map_err(refused)?;
    let layout = reader.layout();
    let unknown: Vec<&str> = (0..layout.columns.len())
        .filter(|i| Some(*i) != layout.time && !layout.states.contains(i) && !layout.inputs.contains(i))
        .map(|i| layout.columns[i].as_str())
        .collect();
    if !unknown.is_empty() && !allow_unknown_columns {
        return Err(DomainError::invalid(format!(
            "CSV line 1: the stream has no column {}; remove it or send `allow_unknown_columns=true`",
            unknown.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        ))
        .at(domain::error::pointer(["1", unknown[0]])));
    }
    let timed = reader.layout().time.is_some();
    let (mut times, mut x, mut u, mut rows) = (Vec::new(), Vec::new(), Vec::new(), 0);
    // The line of each time stamp, so a refused one is located where it is.
    let mut lines = Vec::new();
    let mut row = Row::default();
    while reader.next_row(&mut row).map_err(refused)? {
        if let Some(t) = row.t {
            if t.is_nan() {
                let line = reader.line_number();
                return Err(
                    DomainError::invalid(format!("CSV line {line}: column `t` is empty")).at(format!("/{line}/t"))
                );
            }
            times.push(t);
            lines.push(reader.line_number());
        }
        x.extend_from_slice(&row.x);
        u.extend_from_slice(&row.u);
        rows += 1;
        if rows > shape.max_samples {
            break;
        }
    }
    check_rows(rows, shape).map_err(|e| e.at(""))?;
    let timing = if timed {
        check_times(&times, |k| format!("/{}/t", lines[k]))?;
        Timing::Explicit(times)
    } else {
        Timing::Continue
    };
    Ok(SampleBatch { seq, epoch: None, timing, rows, x, u })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader<'a>(text: &'a str, inputs: &[&str]) -> Result<SampleReader<&'a [u8]>, CsvError> {
        let inputs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        SampleReader::new(text.as_bytes(), None, &inputs)
    }

    #[test]
    fn reads_time_states_inputs_and_dropouts() {
        let mut r = reader("t,x1,\"u\",x2\r\n0,1.5,2,3\n\n0.1,,2,NaN\n", &["u"]).unwrap();
        assert_eq!(r.layout().state_names(), ["x1", "x2"]);
        let mut row = Row::default();
        assert!(r.next_row(&mut row).unwrap());
        assert_eq!((row.t, row.x.clone(), row.u.clone()), (Some(0.0), vec![1.5, 3.0], vec![2.0]));
        assert!(r.next_row(&mut row).unwrap());
        assert!(row.has_dropout());
        assert_eq!(r.line_number(), 4);
        assert!(!r.next_row(&mut row).unwrap());
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let mut row = Row::default();
        let mut r = reader("x1,x2\n1,2\n3,abc\n", &[]).unwrap();
        r.next_row(&mut row).unwrap();
        let e = r.next_row(&mut row).unwrap_err().to_string();
        assert_eq!(e, "line 3, column `x2`: `abc` is not a number");
        let mut r = reader("x1,x2\n1,2,3\n", &[]).unwrap();
        assert_eq!(r.next_row(&mut row).unwrap_err().to_string(), "line 2: 3 cells, the header has 2 columns");
        assert!(matches!(reader("x1\n", &["u"]), Err(CsvError::MissingColumn { .. })));
        assert!(matches!(reader("", &[]), Err(CsvError::Empty)));
        assert!(matches!(reader("a,a\n", &[]), Err(CsvError::DuplicateColumn(_))));
        let mut r = reader("x\ninf\n", &[]).unwrap();
        assert!(matches!(r.next_row(&mut row), Err(CsvError::NotANumber { .. })));
    }
}
