//! Data frames decoded per second (`DataFrame::decode_into`, CRC check included) for a
//! PDC stream of 16 PMUs with 4 phasors, frequency, ROCOF and 2 analogs each, in float and
//! integer formats. The allocation profiler shows the hot path allocating nothing.
//!
//!     cargo bench -p c37118

use c37118::{
    AnalogChannel, AnalogKind, Config, ConfigKind, DataFrame, Format, Nominal, Phasor, PhasorChannel, PhasorKind,
    PmuConfig, Time, TimeQuality,
};
use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

fn pdc(float: bool) -> (Config, Vec<u8>) {
    let format = Format { freq_float: float, analog_float: float, phasor_float: float, phasor_polar: false };
    let pmus = (0..16u16)
        .map(|k| PmuConfig {
            station: format!("PMU {k}"),
            idcode: 100 + k,
            format,
            phasors: ["VA", "VB", "VC", "IA"]
                .iter()
                .map(|n| PhasorChannel {
                    name: (*n).into(),
                    kind: if n.starts_with('I') { PhasorKind::Current } else { PhasorKind::Voltage },
                    scale: 915_527,
                })
                .collect(),
            analogs: ["P", "Q"]
                .iter()
                .map(|n| AnalogChannel { name: (*n).into(), kind: AnalogKind::SinglePoint, scale: 100 })
                .collect(),
            digitals: vec![],
            nominal: Nominal::Hz60,
            cfgcnt: 1,
        })
        .collect();
    let config = Config {
        kind: ConfigKind::Cfg2,
        idcode: 1,
        time: Time::default(),
        time_base: 1_000_000,
        pmus,
        data_rate: 60,
        extras: vec![],
    };
    let mut data = DataFrame::shaped_for(&config);
    data.time = Time { soc: 1_700_000_000, fracsec: 500_000, quality: TimeQuality::default() };
    for (k, pmu) in data.pmus.iter_mut().enumerate() {
        for (j, ph) in pmu.phasors.iter_mut().enumerate() {
            *ph = Phasor::from_polar(130_000.0 + k as f64, j as f64 * 2.0);
        }
        pmu.freq_hz = 60.01;
        pmu.rocof = 0.05;
        pmu.analogs = vec![1200.0, -300.0];
    }
    let mut frame = Vec::new();
    data.encode(&config, &mut frame).expect("the bench frame encodes");
    (config, frame)
}

#[divan::bench(args = ["float", "integer"])]
fn decode_into(bencher: Bencher, format: &str) {
    let (config, frame) = pdc(format == "float");
    let mut data = DataFrame::shaped_for(&config);
    bencher.counter(ItemsCount::new(1usize)).counter(BytesCount::new(frame.len())).bench_local(|| {
        data.decode_into(black_box(&frame), black_box(&config)).expect("decodes");
        black_box(&data);
    });
}

#[divan::bench(args = ["float", "integer"])]
fn encode(bencher: Bencher, format: &str) {
    let (config, frame) = pdc(format == "float");
    let data = DataFrame::parse(&frame, &config).expect("decodes");
    let mut out = Vec::with_capacity(frame.len());
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        out.clear();
        data.encode(black_box(&config), &mut out).expect("encodes");
        black_box(&out);
    });
}

#[divan::bench(args = ["float", "integer"])]
fn crc_only(bencher: Bencher, format: &str) {
    let (_, frame) = pdc(format == "float");
    bencher.counter(BytesCount::new(frame.len())).bench_local(|| c37118::crc_ccitt(black_box(&frame)));
}
