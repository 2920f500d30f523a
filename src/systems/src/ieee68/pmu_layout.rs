//! Where the PMUs of the 68-bus system sit and what they report: buses, quantities per
//! bus, the angle reference, the default placement, the column names, and the parsing and
//! validation of the lists a user gives.

use super::data::N_BUSES;
use crate::error::{SystemsError, require};

/// Default PMU buses (bus numbers of the data files, PST numbering), twelve buses spread
/// over the five areas with both ends of every inter-area tie line:
///
/// - NETS–NYPS corridors (Singh & Pal buses 53–54, 27–53 and 60–61): PST lines 1–2, 27–1
///   and 8–9, so buses 2, 27, 8 on the New England side and 1, 9 on the New York side;
/// - New York to the three equivalent areas: 40–41 (area 3, G14 behind bus 41), 41–42
///   (area 3 to area 4, G15 behind bus 42), 42–52 (area 4 to area 5, G16 behind bus 52)
///   and 50–52 (area 5 back to New York): buses 40, 41, 42, 50, 52;
/// - inside the areas: bus 29 (New England, beside G9 and the fault of the `fault`
///   scenario, where the local mode of G9 shows) and bus 36 (New York, between G12 and
///   the 9–36 corridor).
///
/// The data files carry no area column: the areas are the machine groups of the data
/// README (G1–G9 New England, G10–G13 New York, G14, G15, G16 one equivalent each), and
/// a bus belongs to the area its tie lines above put it in. The inter-area modes swing
/// these groups against each other, so angles on both sides of each tie observe them.
pub const DEFAULT_PMU_BUSES: [usize; 12] = [1, 2, 8, 9, 27, 29, 36, 40, 41, 42, 50, 52];

/// Default angle reference: bus 65, the terminal of the swing machine G13, whose angle is
/// 0 in the power flow. Reported angles are θ_bus − θ_65, so the record's first row
/// equals the power-flow angles and ambient records stay stationary (a common drift of
/// all angles cancels). The reference bus's own angle column would be identically zero
/// and is omitted.
pub const DEFAULT_REFERENCE_BUS: usize = 65;

/// Nominal (and operating-point) system frequency of the data (Hz).
pub const NOMINAL_FREQUENCY_HZ: f64 = 60.0;

/// At most this many PMU buses (every bus once).
pub const MAX_PMU_BUSES: usize = N_BUSES;

/// One quantity a PMU reports for its bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PmuQuantity {
    /// Voltage magnitude (pu), column `b<N>_vm`.
    Vm,
    /// Voltage angle (degrees, unwrapped, relative to the reference bus), `b<N>_va`.
    Va,
    /// Frequency (Hz) from the absolute angle's change over the reporting interval, `b<N>_f`.
    F,
    /// Rate of change of frequency (Hz/s) from consecutive frequencies, `b<N>_rocof`.
    Rocof,
}

impl PmuQuantity {
    /// The default quantities: `vm,va,f`.
    pub const DEFAULT: [PmuQuantity; 3] = [Self::Vm, Self::Va, Self::F];

    /// The name used in lists and column suffixes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vm => "vm",
            Self::Va => "va",
            Self::F => "f",
            Self::Rocof => "rocof",
        }
    }

    /// The unit the simulator reports the quantity in (the service's channel unit).
    pub fn unit(self) -> &'static str {
        match self {
            Self::Vm => "pu",
            Self::Va => "deg",
            Self::F => "Hz",
            Self::Rocof => "Hz/s",
        }
    }

    /// Parses `vm`, `va`, `f` or `rocof`.
    pub fn from_name(name: &str) -> Result<Self, SystemsError> {
        match name {
            "vm" => Ok(Self::Vm),
            "va" => Ok(Self::Va),
            "f" => Ok(Self::F),
            "rocof" => Ok(Self::Rocof),
            _ => Err(SystemsError::UnknownName { what: "PMU quantity (vm, va, f, rocof)", name: name.to_owned() }),
        }
    }

    /// Parses a comma-separated list such as `vm,va,f`; every name once.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, SystemsError> {
        let quantities = text.split(',').map(|s| Self::from_name(s.trim())).collect::<Result<Vec<_>, _>>()?;
        check_quantities(&quantities)?;
        Ok(quantities)
    }
}

/// Parses a comma-separated bus list such as `1,2,29` (bus numbers of the data files).
pub fn parse_bus_list(text: &str) -> Result<Vec<usize>, SystemsError> {
    let buses = text
        .split(',')
        .map(|s| {
            let s = s.trim();
            s.parse::<usize>().map_err(|_| SystemsError::InvalidParameter {
                name: "buses",
                reason: format!("`{s}` is not a bus number (use e.g. 1,2,29)"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_buses(&buses)?;
    Ok(buses)
}

fn check_buses(buses: &[usize]) -> Result<(), SystemsError> {
    require(!buses.is_empty(), "buses", "needs at least one bus")?;
    require(buses.len() <= MAX_PMU_BUSES, "buses", &format!("at most {MAX_PMU_BUSES} buses"))?;
    if let Some(bad) = buses.iter().find(|b| !(1..=N_BUSES).contains(b)) {
        return Err(SystemsError::InvalidParameter {
            name: "buses",
            reason: format!("bus {bad} does not exist (the system has buses 1..{N_BUSES})"),
        });
    }
    if let Some((i, b)) = buses.iter().enumerate().find(|(i, b)| buses[..*i].contains(b)) {
        return Err(SystemsError::InvalidParameter {
            name: "buses",
            reason: format!("bus {b} is listed twice (position {})", i + 1),
        });
    }
    Ok(())
}

fn check_quantities(quantities: &[PmuQuantity]) -> Result<(), SystemsError> {
    require(!quantities.is_empty(), "quantities", "needs at least one quantity")?;
    if let Some((_, q)) = quantities.iter().enumerate().find(|(i, q)| quantities[..*i].contains(q)) {
        return Err(SystemsError::InvalidParameter {
            name: "quantities",
            reason: format!("`{}` is listed twice", q.name()),
        });
    }
    Ok(())
}

/// One recorded column: a quantity at a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmuChannel {
    /// Bus number (1-based, as in the data files).
    pub bus: usize,
    /// What is measured there.
    pub quantity: PmuQuantity,
}

impl PmuChannel {
    /// The column name, e.g. `b29_vm`.
    pub fn name(&self) -> String {
        format!("b{}_{}", self.bus, self.quantity.name())
    }
}

/// The PMU placement and reporting: buses, quantities, angle reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmuLayout {
    /// Measured buses (1-based), in column order.
    pub buses: Vec<usize>,
    /// Quantities reported for every bus, in column order within a bus.
    pub quantities: Vec<PmuQuantity>,
    /// Angles are reported relative to this bus (1-based); its own angle column is omitted.
    pub reference_bus: usize,
}

impl Default for PmuLayout {
    fn default() -> Self {
        Self {
            buses: DEFAULT_PMU_BUSES.to_vec(),
            quantities: PmuQuantity::DEFAULT.to_vec(),
            reference_bus: DEFAULT_REFERENCE_BUS,
        }
    }
}

impl PmuLayout {
    /// Checks the buses, quantities and reference, and that at least one column remains.
    pub fn validate(&self) -> Result<(), SystemsError> {
        check_buses(&self.buses)?;
        check_quantities(&self.quantities)?;
        require((1..=N_BUSES).contains(&self.reference_bus), "reference_bus", &format!("must be 1..{N_BUSES}"))?;
        require(
            !self.channels().is_empty(),
            "quantities",
            "leave no column (only the reference bus's angle was asked for)",
        )?;
        Ok(())
    }

    /// The recorded columns: for each bus in order, its quantities in order, except the
    /// reference bus's angle.
    pub fn channels(&self) -> Vec<PmuChannel> {
        self.buses
            .iter()
            .flat_map(|&bus| self.quantities.iter().map(move |&quantity| PmuChannel { bus, quantity }))
            .filter(|c| !(c.quantity == PmuQuantity::Va && c.bus == self.reference_bus))
            .collect()
    }

    /// The column names (`b<bus>_<quantity>`), in column order.
    pub fn channel_names(&self) -> Vec<String> {
        self.channels().iter().map(PmuChannel::name).collect()
    }

    /// The columns' units, in column order.
    pub fn channel_units(&self) -> Vec<&'static str> {
        self.channels().iter().map(|c| c.quantity.unit()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_bad_lists_are_refused_with_the_reason() {
        assert_eq!(parse_bus_list("1, 2,29").unwrap(), vec![1, 2, 29]);
        assert_eq!(PmuQuantity::parse_list("vm,rocof").unwrap(), vec![PmuQuantity::Vm, PmuQuantity::Rocof]);
        let message = |e: SystemsError| e.to_string();
        assert!(message(parse_bus_list("1,69").unwrap_err()).contains("bus 69 does not exist"));
        assert!(message(parse_bus_list("0").unwrap_err()).contains("bus 0 does not exist"));
        assert!(message(parse_bus_list("3,x").unwrap_err()).contains("`x` is not a bus number"));
        assert!(message(parse_bus_list("3,4,3").unwrap_err()).contains("bus 3 is listed twice"));
        assert!(parse_bus_list("").is_err());
        assert!(message(PmuQuantity::parse_list("vm,phase").unwrap_err()).contains("`phase`"));
        assert!(message(PmuQuantity::parse_list("f,f").unwrap_err()).contains("listed twice"));
        let too_many = (1..=69).map(|b| b.to_string()).collect::<Vec<_>>().join(",");
        assert!(parse_bus_list(&too_many).is_err());
    }

    #[test]
    fn columns_skip_the_reference_angle() {
        let layout = PmuLayout { buses: vec![29, 65], ..PmuLayout::default() };
        assert_eq!(layout.channel_names(), ["b29_vm", "b29_va", "b29_f", "b65_vm", "b65_f"]);
        assert_eq!(layout.channel_units(), ["pu", "deg", "Hz", "pu", "Hz"]);
        assert_eq!(PmuQuantity::Rocof.unit(), "Hz/s");
        let only_reference_angle = PmuLayout { buses: vec![65], quantities: vec![PmuQuantity::Va], reference_bus: 65 };
        assert!(only_reference_angle.validate().is_err());
        assert!(PmuLayout { reference_bus: 0, ..PmuLayout::default() }.validate().is_err());
        let default = PmuLayout::default();
        default.validate().unwrap();
        assert_eq!(default.channels().len(), 36);
        assert_eq!(default.channel_names()[0], "b1_vm");
    }
}
