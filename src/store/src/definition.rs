//! Stream definitions as stored: JSON of the domain's `StreamDefinition`, so an operator can
//! read one with any redb tool. Fields added since the first store read back with their
//! defaults (each says which in `StreamDefinition`), so a store of any age opens as written.

use domain::definition::StreamDefinition;

/// A definition's stored bytes.
pub fn encode_definition(definition: &StreamDefinition) -> Vec<u8> {
    serde_json::to_vec(definition).expect("a definition always serialises")
}

/// A definition from its stored bytes, or why they cannot be read.
pub fn decode_definition(bytes: &[u8]) -> Result<StreamDefinition, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::method::StoredMethod;

    use super::*;
    use crate::{Durability, Store, StoreOptions, Write};

    /// A definition exactly as this store wrote it before estimators and presets existed.
    const BEFORE_METHODS: &str = r#"{"id":"old","channels":[{"name":"a","unit":"pu"}],"inputs":[],"ts":0.1,
        "dictionary":"state,const","mu":1e-6,"sigma":null,"forgetting":1.0,"window":null,"warmup":200,
        "standardise":true,"eigen_every":300,"seed":0,"refactor_every":2000,
        "modes":{"band_hz":[0.0,4.0],"max":8,"min_energy":0.005,
                 "alarm":{"warning":0.05,"critical":0.03,"hold_s":30.0,"clear_margin":0.01}},
        "incarnation":7,"implicit_timing":false,"flat_line":1000,"outlier_gate":0.0}"#;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("koopstream-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn definitions_before_methods_read_back_as_ridge() {
        let old = decode_definition(BEFORE_METHODS.as_bytes()).unwrap();
        assert_eq!((old.estimator, old.preset.as_deref(), old.incarnation), (StoredMethod::Ridge, None, 7));
        assert_eq!(old.estimator_config().method, koopman::Method::Ridge);
        // Written again, it reads back the same, now with its method named.
        let bytes = encode_definition(&old);
        assert!(String::from_utf8_lossy(&bytes).contains(r#""estimator":{"method":"ridge"}"#));
        assert_eq!(decode_definition(&bytes).unwrap(), old);
    }

    #[test]
    fn the_stored_form_of_a_method_is_pinned() {
        // Stored definitions hold this JSON; changing it needs a reader of the old form.
        let json = |m: StoredMethod| serde_json::to_string(&m).unwrap();
        assert_eq!(
            json(StoredMethod::Correlation { lags: 120, rank: Some(4) }),
            r#"{"method":"correlation","lags":120,"rank":4}"#
        );
        assert_eq!(json(StoredMethod::Iv { instrument_delay: 11 }), r#"{"method":"iv","instrument_delay":11}"#);
        assert!(serde_json::from_str::<StoredMethod>(r#"{"method":"ols"}"#).is_err());
    }

    #[test]
    fn methods_and_presets_survive_the_store() {
        let dir = scratch("methods");
        let options = StoreOptions {
            durability: Durability::PerAck,
            group_commit: Duration::from_micros(100),
            flush_interval: Duration::from_millis(100),
        };
        let mut definitions = vec![decode_definition(BEFORE_METHODS.as_bytes()).unwrap()];
        for (id, method, preset) in [
            ("corr", StoredMethod::Correlation { lags: 60, rank: Some(2) }, Some("pmu-ambient")),
            ("iv", StoredMethod::Iv { instrument_delay: 11 }, None),
        ] {
            let mut d = definitions[0].clone();
            d.id = id.into();
            d.estimator = method;
            d.preset = preset.map(str::to_owned);
            definitions.push(d);
        }
        // The old one as its old bytes, the others as this version writes them.
        let mut writes = vec![Write::PutStream { id: "old".into(), definition: BEFORE_METHODS.as_bytes().to_vec() }];
        for d in &definitions[1..] {
            writes.push(Write::PutStream { id: d.id.clone(), definition: encode_definition(d) });
        }
        let store = Store::open(&dir, options).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(store.commit(writes)).unwrap();
        store.close();
        let store = Store::open(&dir, options).unwrap();
        let mut loaded: Vec<StreamDefinition> =
            store.load().unwrap().into_iter().map(|s| decode_definition(&s.unwrap().definition).unwrap()).collect();
        loaded.sort_by(|a, b| a.id.cmp(&b.id));
        definitions.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(loaded, definitions);
        store.close();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
