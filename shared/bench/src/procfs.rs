//! What /proc says about the machine and this process: load average, memory peaks and
//! CPU time per thread (Linux only; elsewhere the values are absent).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// `/proc/loadavg`: 1, 5 and 15 minute load averages.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// The CPU's model name (`/proc/cpuinfo`), which every figure names.
pub fn cpu_model() -> Option<String> {
    std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    })
}

pub fn loadavg() -> Option<LoadAvg> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some(LoadAvg {
        one: it.next()??,
        five: it.next()??,
        fifteen: it.next()??,
    })
}

/// A `kB` field of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> Option<f64> {
    status_field_mib("/proc/self/status", field)
}

/// A `kB` field (`VmHWM:`, `VmRSS:`, ...) of process `pid`'s status, in MiB.
pub fn status_mib_of(pid: u32, field: &str) -> Option<f64> {
    status_field_mib(&format!("/proc/{pid}/status"), field)
}

fn status_field_mib(path: &str, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Peak resident memory of the process so far (VmHWM), MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Resident memory now (VmRSS), MiB.
pub fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

/// Resets VmHWM to the current RSS (`echo 5 > /proc/self/clear_refs`), so a phase's
/// peak can be read on its own. Returns whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Samples VmRSS on a thread until dropped; keeps the maximum.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, max_kib) = (stop.clone(), max_kib.clone());
            std::thread::Builder::new()
                .name("bench-rss".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(mib) = rss_mib() {
                            max_kib.fetch_max((mib * 1024.0) as u64, Ordering::Relaxed);
                        }
                        std::thread::sleep(every);
                    }
                })
                .ok()
        };
        Self {
            stop,
            max_kib,
            handle,
        }
    }

    /// Stops sampling; the largest RSS seen, MiB.
    pub fn finish(mut self) -> Option<f64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let kib = self.max_kib.load(Ordering::Relaxed);
        (kib > 0).then(|| kib as f64 / 1024.0)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Clock ticks per second of /proc CPU times (USER_HZ; 100 on every Linux we run).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far by the whole process, exited threads included.
pub fn process_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat).map(|(_, s)| s)
}

/// CPU seconds used so far by each live thread, by thread id, with its name.
pub fn thread_cpu() -> BTreeMap<u32, (String, f64)> {
    numeric_entries("/proc/self/task")
        .filter_map(|(tid, path)| {
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            Some((tid, parse_stat(&stat)?))
        })
        .collect()
}

/// The command name of process `pid` and the CPU seconds it has used so far, exited
/// threads included.
pub fn process_cpu_of(pid: u32) -> Option<(String, f64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The processes whose command name (`/proc/<pid>/comm`) is `comm`.
pub fn processes_named(comm: &str) -> Vec<u32> {
    numeric_entries("/proc")
        .filter(|(_, path)| {
            std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == comm)
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// The entries of a /proc folder named by a number (processes, or a task's threads).
fn numeric_entries(dir: &str) -> impl Iterator<Item = (u32, std::path::PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let id = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((id, entry.path()))
        })
}

/// (comm, utime + stime in seconds) from a `stat` line; comm may hold spaces and ')'.
fn parse_stat(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // Fields after comm start at field 3 (state); utime is field 14, stime 15.
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / TICKS_PER_SECOND))
}

/// CPU seconds per thread group between two [`thread_cpu`] snapshots, grouped by the
/// thread's name with trailing digits folded (`imgfeat-cpu-0`, `-1` -> `imgfeat-cpu-*`).
pub fn cpu_by_group(
    before: &BTreeMap<u32, (String, f64)>,
    after: &BTreeMap<u32, (String, f64)>,
) -> BTreeMap<String, f64> {
    let mut groups = BTreeMap::new();
    for (tid, (name, secs)) in after {
        let start = before.get(tid).map(|(_, s)| *s).unwrap_or(0.0);
        let used = secs - start;
        if used <= 0.0 {
            continue;
        }
        let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let group = if trimmed.len() < name.len() {
            format!("{trimmed}*")
        } else {
            name.clone()
        };
        *groups.entry(group).or_insert(0.0) += used;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_found_by_its_name_and_its_cpu_read() {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let me = std::process::id();
        assert!(processes_named(comm.trim()).contains(&me));
        assert!(!processes_named("no-such-command-here").contains(&me));
        let (name, seconds) = process_cpu_of(me).unwrap();
        assert_eq!(name, comm.trim());
        assert!(seconds >= 0.0);
        assert!(process_cpu_of(u32::MAX).is_none());
        assert!(status_mib_of(me, "VmHWM:").is_some_and(|m| m > 0.0));
        assert!(status_mib_of(me, "NoSuchField:").is_none());
        assert!(!thread_cpu().is_empty());
    }

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "12 (a b) c) S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let (name, secs) = parse_stat(line).unwrap();
        assert_eq!(name, "a b) c");
        assert!((secs - 3.0).abs() < 1e-9);
    }

    #[test]
    fn threads_are_grouped_by_name_without_their_number() {
        let before = BTreeMap::from([(1, ("imgfeat-cpu-0".to_string(), 1.0))]);
        let after = BTreeMap::from([
            (1, ("imgfeat-cpu-0".to_string(), 3.0)),
            (2, ("imgfeat-cpu-1".to_string(), 1.5)),
            (3, ("main".to_string(), 0.5)),
        ]);
        let g = cpu_by_group(&before, &after);
        assert_eq!(g.get("imgfeat-cpu-*"), Some(&3.5));
        assert_eq!(g.get("main"), Some(&0.5));
    }
}
