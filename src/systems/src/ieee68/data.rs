//! The embedded IEEE 68-bus data (per unit, 100 MVA, 60 Hz) and a minimal reader for
//! its plain numeric CSV files.

use crate::error::SystemsError;

const LINES_CSV: &str = include_str!("../../data/ieee68/lines.csv");
const BUSES_CSV: &str = include_str!("../../data/ieee68/buses.csv");
const POWERFLOW_CSV: &str = include_str!("../../data/ieee68/powerflow.csv");
const GENERATORS_CSV: &str = include_str!("../../data/ieee68/generators.csv");
const CLASSICAL_INIT_CSV: &str = include_str!("../../data/ieee68/classical_init.csv");
const MODES_CSV: &str = include_str!("../../data/ieee68/modes_classical.csv");

/// Number of buses.
pub const N_BUSES: usize = 68;
/// Number of machines.
pub const N_MACHINES: usize = 16;

/// A line or transformer; bus indices are zero-based.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Branch {
    pub from: usize,
    pub to: usize,
    pub r: f64,
    pub x: f64,
    /// Total line charging (half at each end).
    pub b_total: f64,
    /// Off-nominal tap magnitude on the from side (1 for plain lines).
    pub tap: f64,
    pub phase_shift_rad: f64,
}

/// Solved power-flow state and fixed shunts of one bus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BusState {
    pub v: f64,
    pub angle_rad: f64,
    pub p_gen: f64,
    pub q_gen: f64,
    pub p_load: f64,
    pub q_load: f64,
    pub g_shunt: f64,
    pub b_shunt: f64,
}

/// Classical-model machine data on the 100 MVA base.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Machine {
    /// Zero-based terminal bus index.
    pub bus: usize,
    /// Transient reactance x'_d.
    pub xd_prime: f64,
    /// Inertia M = 2 H · MVA / 100 (s).
    pub inertia: f64,
    /// Damping D (data16em, case A).
    pub damping: f64,
}

/// The published classical initial state of one machine (for cross-checks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishedInit {
    pub e_internal: f64,
    pub delta0_rad: f64,
    pub pm0: f64,
}

/// Everything the simulator reads from the embedded files.
#[derive(Debug, Clone, PartialEq)]
pub struct Ieee68Data {
    pub branches: Vec<Branch>,
    pub buses: Vec<BusState>,
    pub machines: Vec<Machine>,
    pub published_init: Vec<PublishedInit>,
}

/// A parsed CSV file: header names and numeric-or-empty cells as text.
struct Table {
    file: &'static str,
    header: Vec<&'static str>,
    rows: Vec<Vec<&'static str>>,
}

impl Table {
    fn parse(file: &'static str, text: &'static str) -> Result<Self, SystemsError> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').map(str::trim).collect();
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').map(str::trim).collect()).collect();
        for (i, row) in rows.iter().enumerate() {
            if row.len() != header.len() {
                return Err(data_error(file, i + 2, "wrong number of cells"));
            }
        }
        Ok(Self { file, header, rows })
    }

    fn column(&self, name: &str) -> Result<usize, SystemsError> {
        self.header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| data_error(self.file, 1, &format!("missing column `{name}`")))
    }

    fn number(&self, row: usize, column: usize) -> Result<f64, SystemsError> {
        let cell = self.rows[row][column];
        cell.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| data_error(self.file, row + 2, &format!("bad number `{cell}`")))
    }

    /// Reads a one-based bus number and returns it zero-based.
    fn bus(&self, row: usize, column: usize) -> Result<usize, SystemsError> {
        let value = self.number(row, column)?;
        if value.fract() != 0.0 || value < 1.0 || value > N_BUSES as f64 {
            return Err(data_error(self.file, row + 2, "bus number out of range"));
        }
        Ok(value as usize - 1)
    }

    /// Reads the named columns of every row as numbers.
    fn records(&self, names: &[&str]) -> Result<Vec<Vec<f64>>, SystemsError> {
        let columns = names.iter().map(|n| self.column(n)).collect::<Result<Vec<_>, _>>()?;
        (0..self.rows.len()).map(|r| columns.iter().map(|&c| self.number(r, c)).collect()).collect()
    }
}

fn data_error(file: &'static str, line: usize, reason: &str) -> SystemsError {
    SystemsError::Data { file, line, reason: reason.to_owned() }
}

/// Reads one value per bus from `table`, whose rows may come in any order.
fn per_bus<T: Copy>(table: &Table, make: impl Fn(usize) -> Result<T, SystemsError>) -> Result<Vec<T>, SystemsError> {
    let bus_column = table.column("bus")?;
    let mut out: Vec<Option<T>> = vec![None; N_BUSES];
    for row in 0..table.rows.len() {
        out[table.bus(row, bus_column)?] = Some(make(row)?);
    }
    out.into_iter()
        .enumerate()
        .map(|(b, v)| v.ok_or_else(|| data_error(table.file, 1, &format!("bus {} missing", b + 1))))
        .collect()
}

impl Ieee68Data {
    /// Parses the embedded files.
    pub fn load() -> Result<Self, SystemsError> {
        let lines = Table::parse("lines.csv", LINES_CSV)?;
        let (from, to) = (lines.column("from_bus")?, lines.column("to_bus")?);
        let values = lines.records(&["r_pu", "x_pu", "b_total_pu", "tap_ratio", "phase_shift_deg"])?;
        let branches = values
            .iter()
            .enumerate()
            .map(|(row, v)| {
                Ok(Branch {
                    from: lines.bus(row, from)?,
                    to: lines.bus(row, to)?,
                    r: v[0],
                    x: v[1],
                    b_total: v[2],
                    // Tap 0 in the PST format means "no transformer".
                    tap: if v[3] == 0.0 { 1.0 } else { v[3] },
                    phase_shift_rad: v[4].to_radians(),
                })
            })
            .collect::<Result<Vec<_>, SystemsError>>()?;

        let flow = Table::parse("powerflow.csv", POWERFLOW_CSV)?;
        let flow_values = flow.records(&["v_pu", "angle_deg", "p_gen_pu", "q_gen_pu", "p_load_pu", "q_load_pu"])?;
        let buses_table = Table::parse("buses.csv", BUSES_CSV)?;
        let shunts = buses_table.records(&["g_shunt_pu", "b_shunt_pu"])?;
        let shunt_by_bus = per_bus(&buses_table, |row| Ok((shunts[row][0], shunts[row][1])))?;
        let flow_by_bus = per_bus(&flow, Ok)?;
        let buses = (0..N_BUSES)
            .map(|b| {
                let v = &flow_values[flow_by_bus[b]];
                BusState {
                    v: v[0],
                    angle_rad: v[1].to_radians(),
                    p_gen: v[2],
                    q_gen: v[3],
                    p_load: v[4],
                    q_load: v[5],
                    g_shunt: shunt_by_bus[b].0,
                    b_shunt: shunt_by_bus[b].1,
                }
            })
            .collect();

        let generators = Table::parse("generators.csv", GENERATORS_CSV)?;
        let bus_column = generators.column("bus")?;
        let machine_values = generators.records(&["xd_p_pu_sys100", "m_s_sys100", "d_classical_pu_sys100"])?;
        let machines = machine_values
            .iter()
            .enumerate()
            .map(|(row, v)| {
                Ok(Machine { bus: generators.bus(row, bus_column)?, xd_prime: v[0], inertia: v[1], damping: v[2] })
            })
            .collect::<Result<Vec<_>, SystemsError>>()?;
        if machines.len() != N_MACHINES {
            return Err(data_error("generators.csv", 1, "expected 16 machines"));
        }

        let init = Table::parse("classical_init.csv", CLASSICAL_INIT_CSV)?;
        let published_init = init
            .records(&["e_internal_pu", "delta0_deg", "pm0_pu_sys100"])?
            .iter()
            .map(|v| PublishedInit { e_internal: v[0], delta0_rad: v[1].to_radians(), pm0: v[2] })
            .collect();
        Ok(Self { branches, buses, machines, published_init })
    }
}

/// Published modes of `case` (e.g. "A_data16m_Dclassical") as (frequency Hz, damping %).
pub fn published_modes(case: &str) -> Result<Vec<(f64, f64)>, SystemsError> {
    let table = Table::parse("modes_classical.csv", MODES_CSV)?;
    let case_column = table.column("case")?;
    let values = table.records(&["freq_hz", "damping_ratio_pct"])?;
    Ok(values
        .iter()
        .enumerate()
        .filter(|(row, _)| table.rows[*row][case_column] == case)
        .map(|(_, v)| (v[0], v[1]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_files_parse_completely() {
        let data = Ieee68Data::load().unwrap();
        assert_eq!(data.branches.len(), 86);
        assert_eq!(data.buses.len(), 68);
        assert_eq!(data.published_init.len(), 16);
        assert_eq!(data.machines[12].bus, 64, "G13 sits on bus 65");
        let total_load: f64 = data.buses.iter().map(|b| b.p_load).sum();
        assert!((total_load - 182.339).abs() < 1e-3);
        assert_eq!(published_modes("A_data16m_Dclassical").unwrap().len(), 15);
    }

    #[test]
    fn line_28_29_is_a_single_circuit() {
        let data = Ieee68Data::load().unwrap();
        let count = data.branches.iter().filter(|b| (b.from, b.to) == (27, 28) || (b.from, b.to) == (28, 27)).count();
        assert_eq!(count, 1);
    }
}
