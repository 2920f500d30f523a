//! C37.118.2 frames (the synchrophasor input of a PMU or PDC). The input is a
//! configuration frame prefixed by its length (two bytes, big-endian), then any frame:
//! the configuration, when it parses, is the one the frame is decoded against (else a
//! fixed one). Beyond "no panic" it checks two promises: a configuration that parses
//! re-encodes to one that parses the same, and a data frame that decodes re-encodes.
#![no_main]

use c37118::{Config, DataFrame, parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else { return };
    let split = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (cfg_bytes, frame) = rest.split_at(split);
    let _ = c37118::frame_len(frame);
    let _ = parse(frame, None);
    let config = match Config::parse(cfg_bytes) {
        Ok(config) => {
            let mut out = Vec::new();
            config.try_encode(&mut out).expect("a parsed configuration re-encodes");
            assert_eq!(Config::parse(&out).as_ref(), Ok(&config), "and parses the same");
            config
        }
        Err(_) => return,
    };
    let _ = parse(frame, Some(&config));
    let mut decoded = DataFrame::shaped_for(&config);
    if decoded.decode_into(frame, &config).is_ok() {
        let mut out = Vec::new();
        decoded.encode(&config, &mut out).expect("a decoded data frame re-encodes");
        assert_eq!(out.len(), frame.len());
    }
});
