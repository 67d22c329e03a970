//! Where one round starts and how far it looks (PostgreSQL's
//! `BgBufferSync` bookkeeping, simplified).
//!
//! ```text
//!   clock hand ─► [ reusable ahead, found by earlier rounds ][ this round ... ]
//!                 hand                                 next_to_clean
//! ```
//!
//! 1. A round continues where the last one stopped (`next_to_clean`) while
//!    that is still ahead of the hand and less than a lap ahead; otherwise
//!    (the sweep overtook us, or we lapped) it starts at the hand.
//! 2. It wants `bgwriter_lru_multiplier` × the smoothed recent allocation
//!    rate reusable buffers ahead of the hand, and in any case the share of
//!    the pool that makes a full lap every two minutes more than it has, so
//!    that a quiet pool is still cleaned slowly.
//! 3. Reusable buffers found earlier count as ahead until the allocations
//!    since (the hand's advance) have used them.

use std::time::Duration;

use storage::buffer::BgWriterStats;

/// Rounds over which the allocation rate is smoothed when it falls
/// (PostgreSQL's `smoothing_samples`); a rise is taken at once.
const SMOOTHING_SAMPLES: f64 = 16.0;

/// The whole pool is looked at at least this often (PostgreSQL's
/// `scan_whole_pool_milliseconds`).
const SCAN_WHOLE_POOL: Duration = Duration::from_secs(120);

/// One round's instructions for `BufferManager::bgwriter_lru_pass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LruScan {
    /// Clock position (ticks) to start at.
    pub start: u64,
    /// Buffers to look at at most: up to one lap ahead of the hand.
    pub max_scan: usize,
    /// Further reusable buffers wanted.
    pub reusable_target: usize,
}

/// What the bgwriter remembers between rounds.
#[derive(Clone, Debug, Default)]
pub struct LruPlanner {
    smoothed_alloc: f64,
    prev_allocs: Option<u64>,
    prev_hand: u64,
    next_to_clean: Option<u64>,
    reusable_ahead: usize,
}

impl LruPlanner {
    /// Plans a round, given the clock hand (`BufferPool::clock_ticks`) and
    /// the allocation counter now.
    pub fn plan(
        &mut self,
        hand: u64,
        allocs_now: u64,
        nbuffers: usize,
        delay: Duration,
        multiplier: f64,
    ) -> LruScan {
        let recent = self
            .prev_allocs
            .map_or(0, |prev| allocs_now.saturating_sub(prev));
        self.prev_allocs = Some(allocs_now);
        let recent = recent as f64;
        if recent > self.smoothed_alloc {
            self.smoothed_alloc = recent;
        } else {
            self.smoothed_alloc += (recent - self.smoothed_alloc) / SMOOTHING_SAMPLES;
        }

        let n = nbuffers as u64;
        let moved = hand.saturating_sub(self.prev_hand) as usize;
        self.prev_hand = hand;
        let (start, ahead) = match self.next_to_clean {
            Some(next) if next >= hand && next - hand < n => {
                (next, self.reusable_ahead.saturating_sub(moved))
            }
            _ => (hand, 0),
        };
        self.reusable_ahead = ahead;
        let wanted = (self.smoothed_alloc * multiplier).ceil() as usize;
        let min_scan =
            ((nbuffers as u128 * delay.as_millis() / SCAN_WHOLE_POOL.as_millis()) as usize).max(1);
        let target = wanted.max(ahead + min_scan);
        LruScan {
            start,
            max_scan: (n - (start - hand)) as usize,
            reusable_target: target - ahead,
        }
    }

    /// Records what the round did.
    pub fn record(&mut self, scan: &LruScan, stats: &BgWriterStats) {
        self.next_to_clean = Some(scan.start + stats.buffers_scanned as u64);
        self.reusable_ahead += stats.buffers_reusable;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(scanned: usize, reusable: usize) -> BgWriterStats {
        BgWriterStats {
            buffers_scanned: scanned,
            buffers_written: 0,
            buffers_reusable: reusable,
        }
    }

    #[test]
    fn the_target_follows_allocations_and_decays_slowly() {
        let delay = Duration::from_millis(200);
        let mut p = LruPlanner::default();
        // 16384 buffers, 200 ms: at least 27 more per round (a lap in 2 min).
        assert_eq!(p.plan(0, 0, 16384, delay, 2.0).reusable_target, 27);
        // 100 allocations since: expect twice that.
        assert_eq!(p.plan(0, 100, 16384, delay, 2.0).reusable_target, 200);
        // Quiet: the estimate falls by a sixteenth of the gap per round.
        assert_eq!(p.plan(0, 100, 16384, delay, 2.0).reusable_target, 188);
        assert_eq!(p.plan(0, 100, 16384, delay, 2.0).reusable_target, 176);
        // A burst is taken at once.
        assert_eq!(p.plan(0, 1100, 16384, delay, 2.0).reusable_target, 2000);
        // A tiny pool still looks for one buffer.
        assert_eq!(
            LruPlanner::default()
                .plan(0, 0, 16, delay, 2.0)
                .reusable_target,
            1
        );
    }

    #[test]
    fn a_quiet_pool_is_cleaned_a_little_further_each_round() {
        let delay = Duration::from_millis(10);
        let mut p = LruPlanner::default();
        let first = p.plan(100, 0, 32, delay, 2.0);
        assert_eq!(
            first,
            LruScan {
                start: 100,
                max_scan: 32,
                reusable_target: 1
            }
        );
        // It found its reusable buffer at the third place.
        p.record(&first, &stats(3, 1));
        // Next round: from there, one more wanted beyond the one ahead.
        let second = p.plan(100, 0, 32, delay, 2.0);
        assert_eq!(
            second,
            LruScan {
                start: 103,
                max_scan: 29,
                reusable_target: 1
            }
        );
        p.record(&second, &stats(29, 1));
        // A full lap ahead: start over at the hand.
        assert_eq!(p.plan(100, 0, 32, delay, 2.0).start, 100);
    }

    #[test]
    fn allocations_use_up_what_was_found_ahead() {
        let delay = Duration::from_millis(10);
        let mut p = LruPlanner::default();
        let first = p.plan(0, 0, 32, delay, 1.0);
        p.record(&first, &stats(10, 6));
        // The sweep took 4 buffers (4 allocations): 2 of the 6 remain ahead;
        // wanted: 4 (smoothed rate 4 × 1.0), at least 2 + 1.
        let second = p.plan(4, 4, 32, delay, 1.0);
        assert_eq!(second.start, 10);
        assert_eq!(second.max_scan, 26);
        assert_eq!(second.reusable_target, 2);
        // The sweep overtook us (16 more allocations): start at the hand,
        // nothing counted ahead, 16 wanted.
        p.record(&second, &stats(2, 2));
        let third = p.plan(20, 20, 32, delay, 1.0);
        assert_eq!((third.start, third.max_scan), (20, 32));
        assert_eq!(third.reusable_target, 16);
    }
}
