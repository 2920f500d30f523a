//! Network algebra of the 68-bus system: bus admittance matrix, constant-impedance
//! loads, generator internal nodes behind x'_d, and Kron reduction to those nodes.

use nalgebra::{Complex, DMatrix};

use super::data::{Ieee68Data, N_BUSES, N_MACHINES};
use crate::error::SystemsError;

type C64 = Complex<f64>;

/// A network configuration: which branches are out of service and which buses are
/// shorted to ground (a bolted three-phase fault holds the bus voltage at zero).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Topology {
    pub open_branches: Vec<usize>,
    pub grounded_buses: Vec<usize>,
}

/// The network seen from the 16 internal machine nodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReducedNetwork {
    /// Y_red = Y_gg − Y_gb Y_bb⁻¹ Y_bg (16 × 16).
    pub y_reduced: DMatrix<C64>,
    /// Bus voltages per unit internal EMF: V = −W E (68 × 16; zero rows at grounded buses).
    pub voltage_map: DMatrix<C64>,
    /// L = Y_gb Y_bb⁻¹ (16 × 68; zero columns at grounded buses). A change ΔY_bb changes
    /// Y_red by L ΔY_bb W to first order.
    pub current_map: DMatrix<C64>,
}

/// Constant-impedance load admittance y = (P − jQ)/|V|² of every bus at the solved voltage.
pub(crate) fn load_admittances(data: &Ieee68Data) -> Vec<C64> {
    data.buses.iter().map(|b| C64::new(b.p_load, -b.q_load) / (b.v * b.v)).collect()
}

/// Internal EMFs E = V_t + j x'_d I with I = conj(S / V_t), from the power flow.
pub(crate) fn internal_emfs(data: &Ieee68Data) -> Vec<C64> {
    data.machines
        .iter()
        .map(|m| {
            let bus = &data.buses[m.bus];
            let v = C64::from_polar(bus.v, bus.angle_rad);
            let current = (C64::new(bus.p_gen, bus.q_gen) / v).conj();
            v + C64::new(0.0, m.xd_prime) * current
        })
        .collect()
}

/// Bus admittance matrix with branches, shunts, loads and the machine admittances
/// 1/(j x'_d) on the terminal-bus diagonals (68 × 68).
pub(crate) fn bus_admittance(data: &Ieee68Data, topology: &Topology) -> DMatrix<C64> {
    let mut y = DMatrix::<C64>::zeros(N_BUSES, N_BUSES);
    for (index, br) in data.branches.iter().enumerate() {
        if topology.open_branches.contains(&index) {
            continue;
        }
        let series = C64::new(br.r, br.x).inv();
        let half_charging = C64::new(0.0, br.b_total / 2.0);
        let tap = C64::from_polar(br.tap, br.phase_shift_rad);
        // Off-nominal tap on the from side (see the data README for the convention).
        y[(br.from, br.from)] += (series + half_charging) / tap.norm_sqr();
        y[(br.to, br.to)] += series + half_charging;
        y[(br.from, br.to)] -= series / tap.conj();
        y[(br.to, br.from)] -= series / tap;
    }
    for (b, (bus, load)) in data.buses.iter().zip(load_admittances(data)).enumerate() {
        y[(b, b)] += C64::new(bus.g_shunt, bus.b_shunt) + load;
    }
    for m in &data.machines {
        y[(m.bus, m.bus)] += C64::new(0.0, m.xd_prime).inv();
    }
    y
}

/// Kron-reduces the network of `topology` to the internal machine nodes.
pub(crate) fn reduce(data: &Ieee68Data, topology: &Topology) -> Result<ReducedNetwork, SystemsError> {
    let y_bus = bus_admittance(data, topology);
    // Grounded buses have V = 0: they simply drop out of the eliminated set.
    let kept: Vec<usize> = (0..N_BUSES).filter(|b| !topology.grounded_buses.contains(b)).collect();
    let n = kept.len();
    let y_bb = DMatrix::from_fn(n, n, |i, j| y_bus[(kept[i], kept[j])]);
    let mut y_bg = DMatrix::<C64>::zeros(n, N_MACHINES);
    let mut y_gb = DMatrix::<C64>::zeros(N_MACHINES, n);
    let mut y_gg = DMatrix::<C64>::zeros(N_MACHINES, N_MACHINES);
    for (g, m) in data.machines.iter().enumerate() {
        let y_machine = C64::new(0.0, m.xd_prime).inv();
        y_gg[(g, g)] = y_machine;
        if let Some(row) = kept.iter().position(|&b| b == m.bus) {
            y_bg[(row, g)] = -y_machine;
            y_gb[(g, row)] = -y_machine;
        }
    }
    let singular = || SystemsError::Numerical("singular bus admittance matrix".into());
    let w = y_bb.clone().lu().solve(&y_bg).ok_or_else(singular)?;
    let l_transposed = y_bb.transpose().lu().solve(&y_gb.transpose()).ok_or_else(singular)?;
    let y_reduced = &y_gg - &y_gb * &w;

    let mut voltage_map = DMatrix::<C64>::zeros(N_BUSES, N_MACHINES);
    let mut current_map = DMatrix::<C64>::zeros(N_MACHINES, N_BUSES);
    for (row, &bus) in kept.iter().enumerate() {
        voltage_map.set_row(bus, &w.row(row));
        current_map.set_column(bus, &l_transposed.row(row).transpose());
    }
    Ok(ReducedNetwork { y_reduced, voltage_map, current_map })
}

/// Index of the (single) branch between buses `a` and `b` (zero-based), either direction.
pub(crate) fn branch_between(data: &Ieee68Data, a: usize, b: usize) -> Result<usize, SystemsError> {
    data.branches
        .iter()
        .position(|br| (br.from, br.to) == (a, b) || (br.from, br.to) == (b, a))
        .ok_or_else(|| SystemsError::Numerical(format!("no branch between buses {} and {}", a + 1, b + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emfs_match_the_published_classical_state() {
        let data = Ieee68Data::load().unwrap();
        for (e, published) in internal_emfs(&data).iter().zip(&data.published_init) {
            // Agreement to the rounding of the 8-decimal power-flow file: |ΔE| ≈ 4e-8 pu and
            // |Δδ| ≈ 2e-7 rad at most (largest for the big equivalents G13 and G16).
            assert!((e.norm() - published.e_internal).abs() < 1e-7);
            assert!((e.arg() - published.delta0_rad).abs() < 5e-7);
        }
    }

    #[test]
    fn reduced_network_reproduces_the_power_flow_voltages() {
        // With the EMFs from the power flow, V = −W E must give back the solved bus voltages.
        let data = Ieee68Data::load().unwrap();
        let reduced = reduce(&data, &Topology::default()).unwrap();
        let e = nalgebra::DVector::from_vec(internal_emfs(&data));
        let v = -(&reduced.voltage_map * &e);
        for (b, bus) in data.buses.iter().enumerate() {
            let expected = C64::from_polar(bus.v, bus.angle_rad);
            assert!((v[b] - expected).norm() < 1e-7, "bus {}: {} vs {}", b + 1, v[b], expected);
        }
    }

    #[test]
    fn reduced_matrix_is_symmetric_and_current_map_is_w_transposed() {
        let data = Ieee68Data::load().unwrap();
        let reduced = reduce(&data, &Topology::default()).unwrap();
        let y = &reduced.y_reduced;
        assert!((y - y.transpose()).norm() < 1e-9 * y.norm());
        let w_t = reduced.voltage_map.transpose();
        assert!((&reduced.current_map - &w_t).norm() < 1e-9 * w_t.norm());
    }

    #[test]
    fn grounded_bus_has_zero_voltage() {
        let data = Ieee68Data::load().unwrap();
        let faulted = Topology { open_branches: vec![], grounded_buses: vec![28] };
        let reduced = reduce(&data, &faulted).unwrap();
        assert!(reduced.voltage_map.row(28).norm() == 0.0);
        assert_eq!(branch_between(&data, 27, 28).unwrap(), 44);
    }
}
