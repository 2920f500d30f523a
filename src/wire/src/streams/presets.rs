//! The document of `GET /v1/presets`: each preset's name, what it is for, the fields it
//! sets (in the shape of a create request, so they can be read as one) and why.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use domain::presets::{Memory, Preset};

use super::EstimatorDoc;

/// The mode meter fields a preset sets.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = PresetModes)]
pub struct PresetModesDoc {
    /// Band of physical modes in Hz; its upper end is clamped to 0.4 / ts for streams
    /// sampled too slowly for it (a band wholly above that is refused).
    pub band_hz: [f64; 2],
}

/// The fields of a create request a preset sets; absent ones it leaves to the request or
/// its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = PresetSettings)]
pub struct PresetSettingsDoc {
    /// The estimator.
    pub estimator: EstimatorDoc,
    /// Correlation lags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lags: Option<usize>,
    /// Rank of the correlation estimator's SVD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Instrument delay in pairs (without it: the dictionary's delay span + 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instrument_delay: Option<usize>,
    /// Dictionary spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dictionary: Option<String>,
    /// Ridge parameter (a request's `mu` or `sigma` replaces it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mu: Option<f64>,
    /// Forgetting factor (a request's `forgetting` or `window` replaces it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forgetting: Option<f64>,
    /// Sliding window in pairs (a request's `forgetting` or `window` replaces it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// Warm-up samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup: Option<usize>,
    /// The mode meter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modes: Option<PresetModesDoc>,
}

/// One preset.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = Preset)]
pub struct PresetDoc {
    /// The name a create request (`preset`) or `koopstream fit --preset` gives.
    pub name: String,
    /// The kind of data it is for.
    pub description: String,
    /// The fields it sets.
    pub sets: PresetSettingsDoc,
    /// Why each field has its value, by field name (`modes.band_hz` for the band).
    pub why: BTreeMap<String, String>,
}

impl From<&Preset> for PresetDoc {
    fn from(p: &Preset) -> Self {
        let mut why = BTreeMap::new();
        let mut note = |field: &str, reason: Option<&str>| {
            if let Some(reason) = reason {
                why.insert(field.to_owned(), reason.to_owned());
            }
        };
        note("estimator", Some(p.estimator.why));
        note("lags", p.lags.map(|s| s.why));
        note("rank", p.rank.map(|s| s.why));
        note("instrument_delay", p.instrument_delay.map(|s| s.why));
        note("dictionary", p.dictionary.map(|s| s.why));
        note("mu", p.mu.map(|s| s.why));
        let memory = p.memory.map(|s| s.value);
        let memory_field = match memory {
            Some(Memory::Window(_)) => "window",
            _ => "forgetting",
        };
        note(memory_field, p.memory.map(|s| s.why));
        note("warmup", p.warmup.map(|s| s.why));
        note("modes.band_hz", p.band_hz.map(|s| s.why));
        let sets = PresetSettingsDoc {
            estimator: p.estimator.value.into(),
            lags: p.lags.map(|s| s.value),
            rank: p.rank.map(|s| s.value),
            instrument_delay: p.instrument_delay.map(|s| s.value),
            dictionary: p.dictionary.map(|s| s.value.to_owned()),
            mu: p.mu.map(|s| s.value),
            forgetting: match memory {
                Some(Memory::Forgetting(rho)) => Some(rho),
                _ => None,
            },
            window: match memory {
                Some(Memory::Window(w)) => Some(w),
                _ => None,
            },
            warmup: p.warmup.map(|s| s.value),
            modes: p.band_hz.map(|s| PresetModesDoc { band_hz: s.value }),
        };
        Self { name: p.name.to_owned(), description: p.description.to_owned(), sets, why }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::CreateStream;
    use domain::definition::StreamDefinition;
    use domain::presets::PRESETS;

    #[test]
    fn every_value_has_a_reason_and_the_settings_read_as_a_create_request() {
        for preset in PRESETS {
            let doc = PresetDoc::from(preset);
            let mut sets = serde_json::to_value(&doc.sets).unwrap();
            let fields: Vec<String> = sets.as_object().unwrap().keys().cloned().collect();
            for field in fields {
                let key = if field == "modes" { "modes.band_hz".to_owned() } else { field };
                assert!(doc.why.contains_key(&key), "{}: no reason for {key}", preset.name);
            }
            // The settings as a request: the same definition as the preset itself, on enough
            // channels that a preset's rank (a ceiling) is not above the observables.
            let channels: Vec<_> = (0..12).map(|i| serde_json::json!({"name": format!("c{i}")})).collect();
            let object = sets.as_object_mut().unwrap();
            object.insert("channels".into(), serde_json::json!(channels));
            object.insert("ts".into(), serde_json::json!(1.0 / 30.0));
            let explicit: CreateStream = serde_json::from_value(sets).unwrap();
            let named: CreateStream = serde_json::from_value(serde_json::json!({
                "channels": channels, "ts": 1.0 / 30.0, "preset": preset.name,
            }))
            .unwrap();
            let define = |r: CreateStream| StreamDefinition::from_request(r.into(), 300, || "s".into()).unwrap();
            let (explicit, named) = (define(explicit), define(named));
            assert_eq!(StreamDefinition { preset: Some(preset.name.into()), ..explicit }, named, "{}", preset.name);
        }
    }
}
