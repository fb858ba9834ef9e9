//! What a Redis Cluster node's answer to one command of a batch means for that command.
//! MOVED, ASK, TRYAGAIN and READONLY are refusals: the node did not run the command, so
//! sending it again (to the node named, or after a wait) cannot run it twice. This is what
//! lets a batch follow redirects command by command, scripts with side effects included
//! (badge bumps, send claims), while the commands that did run are never sent again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{ServerErrorKind, Value};

use crate::nodes::Node;

/// One command's answer, classified.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// The command ran, or failed for a reason of its own (the caller reports it).
    Done,
    /// The slot is served by `node` now: the slot map is out of date.
    Moved { slot: u16, node: Node },
    /// The slot is being migrated and the key is not (or no longer) here: send `ASKING`
    /// and the command to `node`, once; the slot map stays as it is.
    Ask { node: Node },
    /// A multi-key command (a script) whose keys are split between the two nodes of a
    /// migration, or not all there yet: the same command to the same node, a moment later.
    TryAgain,
    /// A write reached a node that a failover made a replica: the slot map is out of date.
    ReadOnly,
}

/// Reads the answer `answered` gave to one command. A MOVED or ASK whose node cannot be
/// read is left as the error it is.
pub(crate) fn classify(reply: &Value, answered: &Node) -> Answer {
    let Value::ServerError(error) = reply else {
        return Answer::Done;
    };
    let target = || {
        let mut details = error.details()?.split_ascii_whitespace();
        let slot: u16 = details.next()?.parse().ok()?;
        let node = Node::from_redirect(details.next()?, answered)?;
        Some((slot, node))
    };
    match error.kind() {
        Some(ServerErrorKind::Moved) => match target() {
            Some((slot, node)) => Answer::Moved { slot, node },
            None => Answer::Done,
        },
        Some(ServerErrorKind::Ask) => match target() {
            Some((_, node)) => Answer::Ask { node },
            None => Answer::Done,
        },
        Some(ServerErrorKind::TryAgain) => Answer::TryAgain,
        Some(ServerErrorKind::ReadOnly) => Answer::ReadOnly,
        _ => Answer::Done,
    }
}

/// The waits between tries of commands that answered TRYAGAIN: 10 ms, doubling up to
/// 250 ms. A slot's keys move in a few milliseconds each; the wait grows for a migration
/// of many keys without hammering the two nodes meanwhile.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

const FIRST_WAIT: Duration = Duration::from_millis(10);
const LONGEST_WAIT: Duration = Duration::from_millis(250);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { next: FIRST_WAIT }
    }

    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(LONGEST_WAIT);
        wait
    }
}

/// How long a MOVED answer is believed over `CLUSTER SLOTS`. The node that owns a slot
/// now says so at once, while the node a refresh happens to ask may learn it by gossip a
/// moment later; the slot map read after a MOVED may still show the old owner.
const TRUST_MOVED_FOR: Duration = Duration::from_secs(10);

/// Slots whose owner a MOVED answer named, believed over the slot map for a short while.
#[derive(Debug, Default)]
pub(crate) struct MovedSlots {
    slots: Mutex<HashMap<u16, (Node, Instant)>>,
}

impl MovedSlots {
    pub(crate) fn record(&self, slot: u16, node: Node, now: Instant) {
        self.lock().insert(slot, (node, now + TRUST_MOVED_FOR));
    }

    /// The node a recent MOVED named for `slot`, if any.
    pub(crate) fn node_of(&self, slot: u16, now: Instant) -> Option<Node> {
        self.lock()
            .get(&slot)
            .filter(|(_, until)| now < *until)
            .map(|(node, _)| node.clone())
    }

    /// After reading the slot map again: forgets what the map now agrees with, and what is
    /// too old to believe over it.
    pub(crate) fn settle(&self, map_agrees: impl Fn(u16, &Node) -> bool, now: Instant) {
        self.lock()
            .retain(|&slot, (node, until)| now < *until && !map_agrees(slot, node));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u16, (Node, Instant)>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u16) -> Node {
        Node {
            host: "127.0.0.1".into(),
            port,
        }
    }

    fn error(text: &str) -> Value {
        redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn refusals_are_told_apart_from_replies_and_other_errors() {
        let answered = node(7101);
        assert_eq!(classify(&Value::Int(3), &answered), Answer::Done);
        assert_eq!(
            classify(&error("MOVED 3300 127.0.0.1:7102"), &answered),
            Answer::Moved {
                slot: 3300,
                node: node(7102)
            }
        );
        assert_eq!(
            classify(&error("ASK 3300 :7103"), &answered),
            Answer::Ask { node: node(7103) }
        );
        assert_eq!(
            classify(
                &error("TRYAGAIN Multiple keys request during rehashing of slot"),
                &answered
            ),
            Answer::TryAgain
        );
        assert_eq!(
            classify(
                &error("READONLY You can't write against a read only replica."),
                &answered
            ),
            Answer::ReadOnly
        );
        for other in ["NOSCRIPT No matching script", "ERR wrong", "MOVED nonsense"] {
            assert_eq!(classify(&error(other), &answered), Answer::Done, "{other}");
        }
    }

    #[test]
    fn waits_double_from_10_ms_up_to_250_ms() {
        let mut backoff = Backoff::new();
        let waits: Vec<u64> = (0..7)
            .map(|_| backoff.next_wait().as_millis() as u64)
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 250, 250]);
    }

    #[test]
    fn a_moved_answer_wins_over_a_slot_map_that_has_not_caught_up_for_a_while_only() {
        let moved = MovedSlots::default();
        let t0 = Instant::now();
        moved.record(3300, node(7102), t0);
        // The map read after the MOVED still names the old owner: the answer stays.
        moved.settle(|_, n| n.port == 7101, t0);
        assert_eq!(moved.node_of(3300, t0), Some(node(7102)));
        assert_eq!(moved.node_of(3301, t0), None);
        // Too old to believe over the map.
        let later = t0 + TRUST_MOVED_FOR;
        assert_eq!(moved.node_of(3300, later), None);
        // Once the map agrees, the answer is forgotten.
        moved.record(3300, node(7102), t0);
        moved.settle(|_, n| n.port == 7102, t0);
        assert_eq!(moved.node_of(3300, t0), None);
    }
}
