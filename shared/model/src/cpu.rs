//! The CPU features a model's kernels need, named as Linux names them (`lscpu`'s flags):
//! a model or precision made for VNNI, AMX or BF16 loads elsewhere without complaint and
//! then computes different numbers (MLAS's AVX2 int8 kernels saturate on 8-bit weights),
//! so the need is written down and checked before anything is stored.

use std::collections::BTreeSet;

/// The flags of this machine's CPU (`/proc/cpuinfo`'s first `flags` line); empty where
/// that file is missing, so every requirement then fails loudly instead of passing.
pub fn flags() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|text| parse_flags(&text))
        .unwrap_or_default()
}

fn parse_flags(cpuinfo: &str) -> BTreeSet<String> {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "flags").then(|| value.split_whitespace().map(String::from).collect())
        })
        .unwrap_or_default()
}

/// `None` when `have` holds at least one of `any_of` (or `any_of` is empty), else what
/// is missing, for an error message.
pub fn missing(any_of: &[String], have: &BTreeSet<String>) -> Option<String> {
    if any_of.is_empty() || any_of.iter().any(|f| have.contains(f)) {
        return None;
    }
    Some(format!(
        "needs one of the CPU features [{}], which this CPU lacks",
        any_of.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_read_from_the_first_flags_line() {
        let text =
            "processor\t: 0\nflags\t\t: fpu sse2 avx512_vnni\n\nprocessor\t: 1\nflags\t: fpu\n";
        let flags = parse_flags(text);
        assert!(flags.contains("avx512_vnni") && flags.contains("sse2"));
        assert_eq!(flags.len(), 3);
    }

    #[test]
    fn one_of_the_features_is_enough_and_none_is_refused() {
        let have: BTreeSet<String> = ["sse2".to_string(), "avx_vnni".to_string()].into();
        let need = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(missing(&need(&["avx512_vnni", "avx_vnni"]), &have), None);
        assert_eq!(missing(&[], &have), None);
        let err = missing(&need(&["amx_int8", "avx512_vnni"]), &have).unwrap();
        assert!(err.contains("amx_int8, avx512_vnni"), "{err}");
    }

    #[test]
    fn this_machine_reports_its_flags() {
        // Every x86-64 CPU Linux runs on has SSE2: an empty set means the parse broke.
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert!(flags().contains("sse2"), "{:?}", flags());
        }
    }
}
