//! Which acknowledgements to send for the deliveries of one channel, and when.
//!
//! Handlers finish in any order. Acking each delivery on its own costs the broker one frame,
//! and on a quorum queue one Raft log entry, per message. Here a run of consecutive
//! deliveries (by delivery tag) that all finished with `Ack` is acknowledged with a single
//! `basic.ack` with `multiple` set. The rule that keeps this safe: a multiple ack of tag T
//! settles every unsettled delivery up to T on the channel, so it is only sent when every
//! delivery up to T that this channel still holds finished with `Ack`. A delivery still
//! being handled holds back the ones after it, but never for long: a finished delivery
//! waits at most `max_wait` before it is acked on its own. Requeues are never coalesced.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A settlement to send, in the order given.
#[derive(Debug, PartialEq, Eq)]
pub enum Settle<A> {
    /// `basic.ack` of this delivery; with `multiple`, of every unsettled one up to it.
    Ack {
        acker: A,
        multiple: bool,
        count: usize,
    },
    /// `basic.nack` with requeue of this delivery alone.
    Requeue { acker: A },
}

enum Slot<A> {
    Running(A),
    Finished(A, Instant),
}

/// The deliveries of one channel from receipt to settlement.
pub struct Settler<A> {
    open: BTreeMap<u64, Slot<A>>,
    max_wait: Duration,
}

impl<A> Settler<A> {
    pub fn new(max_wait: Duration) -> Settler<A> {
        Settler {
            open: BTreeMap::new(),
            max_wait,
        }
    }

    /// A delivery arrived and its handler started.
    pub fn received(&mut self, tag: u64, acker: A) {
        self.open.insert(tag, Slot::Running(acker));
    }

    /// The handler said `Ack`: the delivery is acked with the next settlement.
    pub fn finished(&mut self, tag: u64, now: Instant) {
        if let Some(slot) = self.open.remove(&tag) {
            let acker = match slot {
                Slot::Running(acker) | Slot::Finished(acker, _) => acker,
            };
            self.open.insert(tag, Slot::Finished(acker, now));
        }
    }

    /// The handler said `Requeue` (or failed): the nack goes out now, on its own.
    pub fn requeue(&mut self, tag: u64) -> Option<Settle<A>> {
        let acker = match self.open.remove(&tag)? {
            Slot::Running(acker) | Slot::Finished(acker, _) => acker,
        };
        Some(Settle::Requeue { acker })
    }

    /// The acks that can go out now: one (multiple) ack for the run of finished deliveries
    /// at the front, then each finished delivery that has waited `max_wait` behind one
    /// still running (or all of them when `flush`, at the end of a connection).
    pub fn settle(&mut self, now: Instant, flush: bool) -> Vec<Settle<A>> {
        let mut out = Vec::new();
        let mut run = 0usize;
        let mut last = None;
        while let Some(entry) = self.open.first_entry() {
            if !matches!(entry.get(), Slot::Finished(..)) {
                break;
            }
            if let Slot::Finished(acker, _) = entry.remove() {
                run += 1;
                last = Some(acker);
            }
        }
        if let Some(acker) = last {
            out.push(Settle::Ack {
                acker,
                multiple: run > 1,
                count: run,
            });
        }
        let overdue: Vec<u64> = self
            .open
            .iter()
            .filter_map(|(&tag, slot)| match slot {
                Slot::Finished(_, at) if flush || now.duration_since(*at) >= self.max_wait => {
                    Some(tag)
                }
                _ => None,
            })
            .collect();
        for tag in overdue {
            if let Some(Slot::Finished(acker, _)) = self.open.remove(&tag) {
                out.push(Settle::Ack {
                    acker,
                    multiple: false,
                    count: 1,
                });
            }
        }
        out
    }

    /// When the oldest finished delivery still waiting must be acked.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open
            .values()
            .filter_map(|slot| match slot {
                Slot::Finished(_, at) => Some(*at + self.max_wait),
                Slot::Running(_) => None,
            })
            .min()
    }

    /// Deliveries not yet settled.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.open.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(10);

    fn acks(settles: &[Settle<u64>]) -> Vec<(u64, bool)> {
        settles
            .iter()
            .map(|s| match s {
                Settle::Ack {
                    acker, multiple, ..
                } => (*acker, *multiple),
                Settle::Requeue { acker } => panic!("unexpected requeue of {acker}"),
            })
            .collect()
    }

    fn settler(tags: std::ops::RangeInclusive<u64>) -> Settler<u64> {
        let mut s = Settler::new(WAIT);
        for tag in tags {
            s.received(tag, tag);
        }
        s
    }

    #[test]
    fn a_run_of_finished_deliveries_is_acked_with_one_multiple_ack() {
        let now = Instant::now();
        let mut s = settler(1..=5);
        for tag in [3, 1, 2] {
            s.finished(tag, now);
        }
        assert_eq!(acks(&s.settle(now, false)), vec![(3, true)]);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_single_finished_delivery_is_acked_without_multiple() {
        let now = Instant::now();
        let mut s = settler(1..=2);
        s.finished(1, now);
        assert_eq!(acks(&s.settle(now, false)), vec![(1, false)]);
    }

    #[test]
    fn a_running_delivery_is_never_covered_by_a_multiple_ack() {
        let now = Instant::now();
        let mut s = settler(1..=4);
        for tag in [1, 3, 4] {
            s.finished(tag, now);
        }
        // 2 still runs: only 1 may be acked; 3 and 4 wait behind it.
        assert_eq!(acks(&s.settle(now, false)), vec![(1, false)]);
        assert!(s.settle(now, false).is_empty());
        s.finished(2, now);
        assert_eq!(acks(&s.settle(now, false)), vec![(4, true)]);
        assert!(s.is_empty());
    }

    #[test]
    fn a_finished_delivery_behind_a_slow_one_is_acked_alone_after_the_wait() {
        let start = Instant::now();
        let mut s = settler(1..=3);
        s.finished(2, start);
        s.finished(3, start + WAIT / 2);
        assert_eq!(s.next_deadline(), Some(start + WAIT));
        assert!(s.settle(start + WAIT / 2, false).is_empty());
        assert_eq!(acks(&s.settle(start + WAIT, false)), vec![(2, false)]);
        assert_eq!(acks(&s.settle(start + WAIT * 2, false)), vec![(3, false)]);
        // The slow one is still open and unsettled.
        assert_eq!(s.len(), 1);
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn a_requeued_delivery_is_nacked_alone_and_later_runs_skip_it() {
        let now = Instant::now();
        let mut s = settler(1..=3);
        s.finished(1, now);
        assert_eq!(s.requeue(2), Some(Settle::Requeue { acker: 2 }));
        s.finished(3, now);
        // 2 was nacked before this ack goes out, so the ack of 3 with multiple cannot
        // touch it: the broker no longer holds it as unacked on this channel.
        assert_eq!(acks(&s.settle(now, false)), vec![(3, true)]);
        assert_eq!(s.requeue(2), None);
    }

    #[test]
    fn flush_acks_every_finished_delivery_and_leaves_running_ones() {
        let now = Instant::now();
        let mut s = settler(1..=4);
        s.finished(2, now);
        s.finished(4, now);
        assert_eq!(acks(&s.settle(now, true)), vec![(2, false), (4, false)]);
        assert_eq!(s.len(), 2);
    }
}
