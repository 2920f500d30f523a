//! `Dense`: a column-major matrix owned as one flat buffer, the storage of every matrix the
//! recursion keeps (the hot path works on its columns as plain slices, so it never
//! allocates), with views as faer matrices for the cache-blocked products and the solves.

use faer::{MatMut, MatRef};

/// A dense column-major matrix owned as one flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dense {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Dense {
    pub(crate) fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![0.0; rows * cols] }
    }

    /// A matrix from its column-major entries, or None when their number does not fit.
    pub(crate) fn from_column_major(rows: usize, cols: usize, data: Vec<f64>) -> Option<Self> {
        (data.len() == rows * cols).then_some(Self { rows, cols, data })
    }

    /// The column-major entries.
    pub(crate) fn entries(&self) -> &[f64] {
        &self.data
    }

    pub(crate) fn entries_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    pub(crate) fn col(&self, j: usize) -> &[f64] {
        &self.data[j * self.rows..(j + 1) * self.rows]
    }

    pub(crate) fn col_mut(&mut self, j: usize) -> &mut [f64] {
        &mut self.data[j * self.rows..(j + 1) * self.rows]
    }

    pub(crate) fn get(&self, i: usize, j: usize) -> f64 {
        self.data[j * self.rows + i]
    }

    pub(crate) fn as_faer(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.data, self.rows, self.cols)
    }

    pub(crate) fn as_faer_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.data, self.rows, self.cols)
    }

    /// Overwrites self with a faer matrix of the same shape.
    pub(crate) fn copy_from_faer(&mut self, m: MatRef<'_, f64>) {
        debug_assert_eq!((m.nrows(), m.ncols()), (self.rows, self.cols));
        for j in 0..self.cols {
            let col = self.col_mut(j);
            for (i, v) in col.iter_mut().enumerate() {
                *v = m[(i, j)];
            }
        }
    }

    pub(crate) fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}
