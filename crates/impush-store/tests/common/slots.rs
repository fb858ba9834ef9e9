//! Moving one hash slot between primaries of the local test cluster by hand, step by step,
//! as `redis-cli --cluster reshard` does: `CLUSTER SETSLOT <slot> IMPORTING` on the target,
//! `MIGRATING` on the source, `MIGRATE` of the keys (a few at a time, or all), then
//! `SETSLOT <slot> NODE <target>` on every primary. Between the steps a test can look at
//! what impush does with a slot half moved. Dropping a [`SlotMove`] finishes the move if the
//! test did not, then moves the slot back to where it was, so the cluster is left whole.
//!
//! Shared by the store's tests and the fleet's (`tests/scale_e2e.rs` includes this file).

use redis::{Connection, Value};

/// One primary of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primary {
    pub id: String,
    pub port: u16,
}

/// The primaries and the slot ranges each serves, as the node on `port` sees them.
pub fn primaries(port: u16) -> Vec<(Primary, Vec<(u16, u16)>)> {
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut connect(port))
        .expect("CLUSTER NODES");
    let mut primaries = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || !fields[2].contains("master") {
            continue;
        }
        let address = fields[1].split('@').next().unwrap_or_default();
        let port = address.rsplit(':').next().unwrap().parse().unwrap();
        let ranges = fields[8..]
            .iter()
            .filter(|range| !range.starts_with('['))
            .map(|range| match range.split_once('-') {
                Some((start, end)) => (start.parse().unwrap(), end.parse().unwrap()),
                None => (range.parse().unwrap(), range.parse().unwrap()),
            })
            .collect();
        primaries.push((
            Primary {
                id: fields[0].to_owned(),
                port,
            },
            ranges,
        ));
    }
    primaries.sort_by_key(|(primary, _)| primary.port);
    primaries
}

/// The primary serving `slot`, as the node on `port` sees it.
pub fn owner_of(port: u16, slot: u16) -> Primary {
    primaries(port)
        .into_iter()
        .find(|(_, ranges)| ranges.iter().any(|&(s, e)| s <= slot && slot <= e))
        .map(|(primary, _)| primary)
        .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
}

pub fn connect(port: u16) -> Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// The cluster slot of a key, as Redis computes it.
pub fn slot_of(port: u16, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut connect(port))
        .unwrap()
}

/// How many errors of `code` (e.g. `TRYAGAIN`) the node on `port` has answered so far.
pub fn errors_answered(port: u16, code: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("errorstats")
        .query(&mut connect(port))
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("errorstat_{code}:count=")))
        .map_or(0, |count| count.trim().parse().unwrap())
}

/// A slot on its way from one primary to another.
pub struct SlotMove {
    pub slot: u16,
    pub from: Primary,
    pub to: Primary,
    /// Every primary of the cluster.
    all: Vec<Primary>,
    finished: bool,
    /// Move the slot back to `from` when dropped.
    move_back: bool,
}

impl SlotMove {
    /// Opens the move of `slot` from its owner to the next primary (by port): keys
    /// already there stay, new keys go to the target (ASK), nothing is copied yet.
    pub fn begin(seed_port: u16, slot: u16) -> SlotMove {
        let all: Vec<Primary> = primaries(seed_port).into_iter().map(|(p, _)| p).collect();
        let from = owner_of(seed_port, slot);
        let index = all.iter().position(|p| *p == from).unwrap();
        let to = all[(index + 1) % all.len()].clone();
        SlotMove::between(slot, from, to, all, true)
    }

    fn between(slot: u16, from: Primary, to: Primary, all: Vec<Primary>, back: bool) -> SlotMove {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("IMPORTING")
            .arg(&from.id)
            .query(&mut connect(to.port))
            .unwrap();
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("MIGRATING")
            .arg(&to.id)
            .query(&mut connect(from.port))
            .unwrap();
        SlotMove {
            slot,
            from,
            to,
            all,
            finished: false,
            move_back: back,
        }
    }

    /// Copies these keys to the target and deletes them from the source, atomically per
    /// call (keys not on the source, or gone before `MIGRATE` runs, are skipped).
    pub fn migrate(&self, keys: &[String]) {
        let mut con = connect(self.from.port);
        let present: Vec<&String> = keys
            .iter()
            .filter(|key| {
                redis::cmd("EXISTS")
                    .arg(*key)
                    .query::<i64>(&mut con)
                    .unwrap()
                    == 1
            })
            .collect();
        if present.is_empty() {
            return;
        }
        let reply: Value = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(self.to.port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&present)
            .query(&mut con)
            .unwrap();
        // NOKEY: the keys went meanwhile (expired, deleted): nothing left to move.
        assert!(
            matches!(&reply, Value::Okay)
                || matches!(&reply, Value::SimpleString(s) if s == "NOKEY"),
            "MIGRATE answered {reply:?}"
        );
    }

    /// The keys of the slot still on the source, at most `count`.
    pub fn keys_left(&self, count: usize) -> Vec<String> {
        redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(self.slot)
            .arg(count)
            .query(&mut connect(self.from.port))
            .unwrap()
    }

    /// Moves every key left, then hands the slot to the target on every primary (the
    /// target first, then the source, as `redis-cli` does).
    pub fn finish(&mut self) {
        loop {
            let keys = self.keys_left(100);
            if keys.is_empty() {
                break;
            }
            self.migrate(&keys);
        }
        let mut order = vec![self.to.clone(), self.from.clone()];
        order.extend(
            self.all
                .iter()
                .filter(|p| **p != self.to && **p != self.from)
                .cloned(),
        );
        for primary in order {
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(self.slot)
                .arg("NODE")
                .arg(&self.to.id)
                .query(&mut connect(primary.port))
                .unwrap();
        }
        self.finished = true;
    }
}

impl Drop for SlotMove {
    fn drop(&mut self) {
        if !self.finished {
            self.finish();
        }
        if self.move_back {
            let mut back = SlotMove::between(
                self.slot,
                self.to.clone(),
                self.from.clone(),
                self.all.clone(),
                false,
            );
            back.finish();
        }
    }
}
