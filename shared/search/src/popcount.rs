//! Hardware popcount for the query loops. Without a `target-cpu` setting `count_ones`
//! compiles to a dozen shifts and adds; every query (the scan baseline and the
//! multi-index alike) instead runs through a copy of its loop compiled with POPCNT when
//! the CPU has it, checked once at run time, so the build stays portable.
#![allow(unsafe_code)]

/// Runs `query` compiled with the POPCNT instruction where the CPU has it. The query's
/// functions are inlined into the copy below (one call site each), which is what gives
/// their `count_ones` the instruction.
#[inline(always)]
pub(crate) fn fast<R>(query: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU was just checked to have POPCNT, the only feature enabled.
        return unsafe { with_popcnt(query) };
    }
    query()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn with_popcnt<R>(query: impl FnOnce() -> R) -> R {
    query()
}
