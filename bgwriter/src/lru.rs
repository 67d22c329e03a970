//! How far ahead of the clock hand one round looks (PostgreSQL's
//! `BgBufferSync` estimate, simplified): enough reusable buffers for the
//! allocations expected before the next round, `bgwriter_lru_multiplier`
//! times a smoothed recent allocation rate, and at least the share of the
//! pool that makes a full circle every two minutes.

use std::time::Duration;

/// Rounds over which the allocation rate is smoothed when it falls
/// (PostgreSQL's `smoothing_samples`); a rise is taken at once.
const SMOOTHING_SAMPLES: f64 = 16.0;

/// The whole pool is looked at at least this often (PostgreSQL's
/// `scan_whole_pool_milliseconds`).
const SCAN_WHOLE_POOL: Duration = Duration::from_secs(120);

/// The allocation history of the rounds so far.
#[derive(Clone, Debug, Default)]
pub struct LruPlanner {
    smoothed_alloc: f64,
    prev_allocs: Option<u64>,
}

impl LruPlanner {
    /// The reusable buffers to have ahead of the hand after this round,
    /// given the pool's allocation counter now.
    pub fn target(
        &mut self,
        allocs_now: u64,
        nbuffers: usize,
        delay: Duration,
        multiplier: f64,
    ) -> usize {
        let recent = self
            .prev_allocs
            .map_or(0, |prev| allocs_now.saturating_sub(prev)) as f64;
        self.prev_allocs = Some(allocs_now);
        if recent > self.smoothed_alloc {
            self.smoothed_alloc = recent;
        } else {
            self.smoothed_alloc += (recent - self.smoothed_alloc) / SMOOTHING_SAMPLES;
        }
        let expected = (self.smoothed_alloc * multiplier).ceil() as usize;
        let min_scan = (nbuffers as u128 * delay.as_millis() / SCAN_WHOLE_POOL.as_millis()).max(1);
        expected.max(min_scan as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_follows_allocations_and_decays_slowly() {
        let delay = Duration::from_millis(200);
        let mut p = LruPlanner::default();
        // 16384 buffers, 200 ms: at least 27 per round (a circle in 2 min).
        assert_eq!(p.target(0, 16384, delay, 2.0), 27);
        // 100 allocations since: expect twice that.
        assert_eq!(p.target(100, 16384, delay, 2.0), 200);
        // Quiet: the estimate falls by a sixteenth of the gap per round.
        assert_eq!(p.target(100, 16384, delay, 2.0), 188);
        assert_eq!(p.target(100, 16384, delay, 2.0), 176);
        // A burst is taken at once.
        assert_eq!(p.target(1100, 16384, delay, 2.0), 2000);
        // A tiny pool still looks at one buffer.
        assert_eq!(LruPlanner::default().target(0, 16, delay, 2.0), 1);
    }
}
