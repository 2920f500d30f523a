//! The statistics of the correlation and instrumental-variable estimators in a snapshot
//! (format 6 on): a tag (0 none, 1 correlation, 2 instrumental variables), then the sums.

use koopman::{CorrelationState, DebiasedState, InstrumentalState};

use super::{CodecError, Reader, Writer};

pub(super) fn put_debiased(w: &mut Writer, state: Option<&DebiasedState>) {
    match state {
        None => w.u8(0),
        Some(DebiasedState::Correlation { sums, since_solve }) => {
            w.u8(1);
            for v in [&sums.sums, &sums.lead, &sums.lag, &sums.weight, &sums.ring] {
                w.f64s(v);
            }
            w.bool(sums.operator.is_some());
            if let Some(k) = &sums.operator {
                w.f64s(k);
            }
            w.u64(*since_solve as u64);
        }
        Some(DebiasedState::Instrumental(iv)) => {
            w.u8(2);
            for v in [&iv.moment, &iv.cross, &iv.instruments, &iv.inverse, &iv.operator, &iv.ring] {
                w.f64s(v);
            }
            w.bool(iv.solved);
            w.u64(iv.since_refactor as u64);
        }
    }
}

pub(super) fn get_debiased(r: &mut Reader<'_>) -> Result<Option<DebiasedState>, CodecError> {
    Ok(match r.u8()? {
        0 => None,
        1 => {
            let sums = CorrelationState {
                sums: r.f64s()?,
                lead: r.f64s()?,
                lag: r.f64s()?,
                weight: r.f64s()?,
                ring: r.f64s()?,
                operator: if r.bool()? { Some(r.f64s()?) } else { None },
            };
            Some(DebiasedState::Correlation { sums, since_solve: r.usize()? })
        }
        2 => Some(DebiasedState::Instrumental(InstrumentalState {
            moment: r.f64s()?,
            cross: r.f64s()?,
            instruments: r.f64s()?,
            inverse: r.f64s()?,
            operator: r.f64s()?,
            ring: r.f64s()?,
            solved: r.bool()?,
            since_refactor: r.usize()?,
        })),
        _ => return Err(CodecError::Malformed("estimation method")),
    })
}
