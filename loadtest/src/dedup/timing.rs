//! Matching each upload's code-stored event to what ended it (its duplicate-found
//! event, or the search's handled-events counter reaching it), and the latency
//! summaries.

use std::collections::HashMap;

use serde::Serialize;

use crate::stats::percentile;

/// One upload's times from its code-stored event, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timed {
    /// To its duplicate-found event, when the search announced one.
    pub found: Option<f64>,
    /// To the first scrape showing the search had handled it.
    pub handled: Option<f64>,
}

impl Timed {
    /// The measured latency: the duplicate-found event if any, else handled.
    pub fn latency(&self) -> Option<f64> {
        self.found.or(self.handled)
    }
}

/// Per code-stored event, in the order the driver saw them (`stored`: image ID and
/// seconds since any fixed instant, sorted by time): the time to its duplicate-found
/// event (`found`, same clock), and to the first sample of the search's handled-events
/// counter (`handled`: time and count since the first upload, sorted by time) that
/// covers it: the k-th event is handled once the count reaches k.
pub fn time_uploads(
    stored: &[(u64, f64)],
    found: &HashMap<u64, f64>,
    handled: &[(f64, u64)],
) -> Vec<Timed> {
    stored
        .iter()
        .enumerate()
        .map(|(k, (id, at))| {
            let i = handled.partition_point(|(_, count)| *count < k as u64 + 1);
            Timed {
                found: found.get(id).map(|f| (f - at).max(0.0)),
                handled: handled.get(i).map(|(t, _)| (t - at).max(0.0)),
            }
        })
        .collect()
}

/// Events the search has handled, from its `/metrics` text (sent back to be applied
/// again, `failed`, is not handled).
pub fn handled_events(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("imgfeat_search_events_total{"))
        .filter(|l| {
            ["inserted", "other_shard", "other_version"]
                .iter()
                .any(|r| l.contains(&format!("result=\"{r}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// The value of an unlabelled series in `/metrics` text (0 when absent).
pub(super) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub ms_p50: Option<f64>,
    pub ms_p90: Option<f64>,
    pub ms_p99: Option<f64>,
    pub ms_max: Option<f64>,
    /// Of them, within 1 s.
    pub within_1s: usize,
}

impl Latency {
    pub(super) fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        Self {
            count: ms.len(),
            ms_p50: percentile(&ms, 0.50),
            ms_p90: percentile(&ms, 0.90),
            ms_p99: percentile(&ms, 0.99),
            ms_max: ms.last().copied(),
            within_1s: ms.iter().filter(|&&m| m <= 1000.0).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_is_timed_by_its_event_the_rest_by_the_counter_in_order() {
        // Three events seen at 1.0, 1.1, 1.2 s; the second has a duplicate-found event.
        let stored = [(7, 1.0), (8, 1.1), (9, 1.2)];
        let found = HashMap::from([(8, 1.4)]);
        // The counter: 1 at 1.05 s, 3 at 1.5 s (the scrape missed 2).
        let handled = [(1.05, 1), (1.5, 3)];
        let t = time_uploads(&stored, &found, &handled);
        let ms = |v: Option<f64>| v.map(|s| (s * 1e3).round());
        let got: Vec<_> = t
            .iter()
            .map(|t| (ms(t.found), ms(t.handled), ms(t.latency())))
            .collect();
        assert_eq!(
            got,
            vec![
                (None, Some(50.0), Some(50.0)),
                (Some(300.0), Some(400.0), Some(300.0)),
                (None, Some(300.0), Some(300.0)),
            ]
        );
        // Never handled: untimed.
        let t = time_uploads(&stored, &HashMap::new(), &[(1.05, 1)]);
        assert_eq!(t.iter().filter(|t| t.latency().is_none()).count(), 2);
    }

    #[test]
    fn only_handled_results_count() {
        let text = "# HELP imgfeat_search_events_total x\n\
            imgfeat_search_events_total{result=\"inserted\"} 5\n\
            imgfeat_search_events_total{result=\"other_shard\"} 2\n\
            imgfeat_search_events_total{result=\"failed\"} 4\n\
            imgfeat_search_event_lag_seconds 0.1\n";
        assert_eq!(handled_events(text), 7);
        assert_eq!(metric(text, "imgfeat_search_event_lag_seconds"), 0);
        assert_eq!(
            metric(
                "imgfeat_search_index_codes 12\n",
                "imgfeat_search_index_codes"
            ),
            12
        );
    }
}
