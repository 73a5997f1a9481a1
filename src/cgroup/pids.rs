//! `pids.current`, `pids.max` and `pids.events`: the same format on v1 and v2.

use super::parse;
use super::sample::PidsSample;

/// `pids.current`; false when it did not parse.
pub(crate) fn apply_current(text: &str, out: &mut PidsSample) -> bool {
    out.current = parse::single_u64(text);
    out.current.is_some()
}

/// `pids.max` (`max` or a number); false when it did not parse.
pub(crate) fn apply_max(text: &str, out: &mut PidsSample) -> bool {
    match parse::max_or_u64(text) {
        Some(v) => {
            out.max = v;
            true
        }
        None => false,
    }
}

/// `pids.events`, its `max` key: forks refused at the limit.
pub(crate) fn apply_events(text: &str, out: &mut PidsSample) -> bool {
    out.events_max = parse::flat_key(text, "max");
    out.events_max.is_some()
}
