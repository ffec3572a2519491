//! The change stream, in the order and with the source positions Debezium's MySQL connector
//! reports them: a snapshot of the initial rows (`r`, in primary-key order, `source.snapshot`
//! `first` … `true` … `last`), then binlog changes — inserts `c`, updates `u`, deletes `d`
//! each followed by a tombstone, and primary-key changes, which Debezium writes as a `d` of
//! the old key (header `__debezium.newkey`), its tombstone (same header), then a `c` of the
//! new key (header `__debezium.oldkey`).
//!
//! Only the random generator decides what happens, so a seed fixes every key, operation and
//! column value; the clock only stamps `ts_ms`/`ts_us`/`ts_ns`.

use std::collections::{HashMap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::table::{Reader, UserRow};

/// The first primary key, as in Debezium's `inventory` example database.
pub(crate) const FIRST_ID: i32 = 1001;
/// The binlog-reading MySQL server (the Debezium tutorial's `server-id`).
const SERVER_ID: i64 = 223_344;
const SERVER_UUID: &str = "5c3a2a0e-8f3b-11ef-b3a4-0242ac120002";
const BINLOG_FILE: &str = "mysql-bin.000003";
/// Where the snapshot found the binlog; streaming continues from here.
const SNAPSHOT_POS: i64 = 157;

/// Current time in epoch µs.
pub(crate) type Clock = Box<dyn FnMut() -> i64 + Send>;

pub(crate) fn wall_clock() -> Clock {
    Box::new(|| chrono::Utc::now().timestamp_micros())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Read,
    Create,
    Update,
    Delete,
}

impl Op {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
        }
    }
}

/// The MySQL part of an event's `source` block (the rest is fixed per connector).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    /// When MySQL wrote the change (binlog timestamps have whole seconds), epoch µs.
    pub ts_us: i64,
    /// `first`, `true`, `last` during the snapshot; `false` after.
    pub snapshot: &'static str,
    pub server_id: i64,
    pub gtid: Option<String>,
    pub file: &'static str,
    pub pos: i64,
    pub row: i32,
    pub thread: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub op: Op,
    pub before: Option<UserRow>,
    pub after: Option<UserRow>,
    /// Which MySQL path read the row images.
    pub reader: Reader,
    pub source: Source,
    /// When Debezium processed the event (the envelope's `ts_*`), epoch µs.
    pub ts_us: i64,
    /// Written after the `--evolve` `ALTER TABLE`: the row schema has the new column.
    pub evolved: bool,
}

impl Change {
    /// The primary key the event is keyed by.
    pub(crate) fn key(&self) -> i32 {
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .map_or(0, |r| r.id)
    }
}

/// A Kafka header Debezium adds to the records of a primary-key change, naming the other key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyHeader {
    pub name: &'static str,
    pub id: i32,
}

pub(crate) const NEW_KEY_HEADER: &str = "__debezium.newkey";
pub(crate) const OLD_KEY_HEADER: &str = "__debezium.oldkey";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    Change {
        change: Box<Change>,
        header: Option<KeyHeader>,
    },
    /// Null value after a delete, so log compaction can drop the key.
    Tombstone { key: i32, header: Option<KeyHeader> },
}

impl Message {
    pub(crate) fn key(&self) -> i32 {
        match self {
            Message::Change { change, .. } => change.key(),
            Message::Tombstone { key, .. } => *key,
        }
    }

    pub(crate) fn header(&self) -> Option<KeyHeader> {
        match self {
            Message::Change { header, .. } | Message::Tombstone { header, .. } => *header,
        }
    }
}

/// The share of each operation among the change events, as thresholds of one roll per step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mix {
    /// Rolls are drawn from `0..range`.
    range: u32,
    /// A roll below `insert` inserts, below `update` updates, below `delete` deletes; the
    /// rest change a primary key (a `d` and a `c`).
    insert: u32,
    update: u32,
    delete: u32,
}

impl Default for Mix {
    /// Per step: 25 % inserts, 45 % updates, 20 % deletes, 10 % key changes, which as events
    /// (a key change is two) is ≈ 32 % `c`, 41 % `u`, 27 % `d`.
    fn default() -> Self {
        Mix {
            range: 100,
            insert: 25,
            update: 70,
            delete: 90,
        }
    }
}

impl Mix {
    /// `updates` and `deletes` percent of the change events (`d` of primary-key changes
    /// included, which are a third of the deletes), the rest inserts; `None` unless both are
    /// in 0..=100 and the inserts leave room for the key changes' `c`
    /// (`updates + 4/3 × deletes <= 100`).
    pub(crate) fn percent(updates: f64, deletes: f64) -> Option<Mix> {
        let (u, d) = (updates / 100.0, deletes / 100.0);
        let key_changes = d / 3.0;
        let inserts = 1.0 - u - d;
        if !(u >= 0.0 && d >= 0.0 && inserts + 1e-9 >= key_changes) {
            return None;
        }
        // A step yields 1 + p_key events on average; each share of events × that is the
        // probability of its step.
        let p_key = key_changes / (1.0 - key_changes);
        let events = 1.0 + p_key;
        let range = 10_000u32;
        let at = |p: f64| (p * f64::from(range)).round().clamp(0.0, f64::from(range)) as u32;
        let insert = at((inserts - key_changes) * events);
        let update = at((inserts - key_changes + u) * events);
        let delete = at((inserts - key_changes + u + d - key_changes) * events);
        Some(Mix {
            range,
            insert,
            update,
            delete,
        })
    }
}

/// Yields `keys` snapshot reads, then exactly `count` change events (`c`, `u`, `d`; a
/// primary-key change counts as two), plus a tombstone after every `d`.
pub(crate) struct Workload {
    rng: StdRng,
    clock: Clock,
    keys: u32,
    count: u64,
    snapshotted: u32,
    snapshot_ts_us: Option<i64>,
    changes: u64,
    queue: VecDeque<Message>,
    table: Table,
    /// Deleted keys, which inserts and key changes sometimes reuse.
    free: Vec<i32>,
    next_id: i32,
    pos: i64,
    txn: u64,
    /// The change count at which the table gains its evolved column, if it does.
    evolve_at: Option<u64>,
    evolved: bool,
    mix: Mix,
}

impl Workload {
    pub(crate) fn new(keys: u32, count: u64, seed: u64, clock: Clock) -> Self {
        Workload {
            rng: StdRng::seed_from_u64(seed),
            clock,
            keys,
            count,
            snapshotted: 0,
            snapshot_ts_us: None,
            changes: 0,
            queue: VecDeque::new(),
            table: Table::default(),
            free: Vec::new(),
            next_id: FIRST_ID,
            pos: SNAPSHOT_POS,
            txn: 0,
            evolve_at: None,
            evolved: false,
            mix: Mix::default(),
        }
    }

    /// Draws operations in these shares instead of the default mix.
    pub(crate) fn with_mix(mut self, mix: Mix) -> Self {
        self.mix = mix;
        self
    }

    /// Adds the evolved column (`ALTER TABLE … ADD COLUMN nickname`) after `at` changes.
    pub(crate) fn evolving_at(mut self, at: Option<u64>) -> Self {
        self.evolve_at = at;
        self
    }

    /// The table as the events so far leave it, by primary key, with the reader of the event
    /// that last wrote each row.
    pub(crate) fn rows(&self) -> Vec<(&UserRow, Reader)> {
        let mut rows: Vec<(&UserRow, Reader)> =
            self.table.rows.values().map(|(r, rd)| (r, *rd)).collect();
        rows.sort_by_key(|(r, _)| r.id);
        rows
    }

    fn snapshot_read(&mut self) -> Message {
        let i = self.snapshotted;
        self.snapshotted += 1;
        let ts_us = match self.snapshot_ts_us {
            Some(t) => t,
            None => *self.snapshot_ts_us.insert((self.clock)()),
        };
        // One table, so its first record is the snapshot's first and its last the last.
        let marker = if i + 1 == self.keys {
            "last"
        } else if i == 0 {
            "first"
        } else {
            "true"
        };
        let id = self.next_id;
        self.next_id += 1;
        let row = UserRow::random(&mut self.rng, id);
        self.table.insert(row.clone(), Reader::Snapshot);
        Message::Change {
            change: Box::new(Change {
                op: Op::Read,
                before: None,
                after: Some(row),
                reader: Reader::Snapshot,
                source: Source {
                    ts_us: ts_us - ts_us % 1000,
                    snapshot: marker,
                    server_id: 0,
                    gtid: None,
                    file: BINLOG_FILE,
                    pos: SNAPSHOT_POS,
                    row: 0,
                    thread: None,
                },
                ts_us: (self.clock)(),
                evolved: false,
            }),
            header: None,
        }
    }

    /// One MySQL transaction's binlog position; every event of one statement shares it.
    fn next_source(&mut self) -> Source {
        self.txn += 1;
        self.pos += self.rng.gen_range(250..900);
        let now = (self.clock)();
        Source {
            ts_us: now - now.rem_euclid(1_000_000),
            snapshot: "false",
            server_id: SERVER_ID,
            gtid: Some(format!("{SERVER_UUID}:{}", self.txn)),
            file: BINLOG_FILE,
            pos: self.pos,
            row: 0,
            thread: Some(self.rng.gen_range(10..14)),
        }
    }

    fn change(
        &mut self,
        op: Op,
        before: Option<UserRow>,
        after: Option<UserRow>,
        source: Source,
    ) -> Box<Change> {
        self.changes += 1;
        Box::new(Change {
            op,
            before,
            after,
            reader: Reader::Binlog,
            source,
            ts_us: (self.clock)(),
            evolved: self.evolved,
        })
    }

    fn new_id(&mut self, reuse: f64) -> i32 {
        if !self.free.is_empty() && self.rng.gen_bool(reuse) {
            let i = self.rng.gen_range(0..self.free.len());
            self.free.swap_remove(i)
        } else {
            let id = self.next_id;
            self.next_id += 1;
            id
        }
    }

    fn step(&mut self) {
        if self.evolve_at.is_some_and(|at| self.changes >= at) {
            self.evolved = true;
        }
        let remaining = self.count - self.changes;
        if self.table.is_empty() {
            return self.insert();
        }
        let mix = self.mix;
        match self.rng.gen_range(0..mix.range) {
            r if r < mix.insert => self.insert(),
            r if r < mix.update => self.update(),
            r if r < mix.delete => self.delete(),
            _ if remaining >= 2 => self.change_key(),
            _ => self.update(),
        }
    }

    fn insert(&mut self) {
        let id = self.new_id(0.2);
        let mut row = UserRow::random(&mut self.rng, id);
        if self.evolved {
            row.set_nickname(&mut self.rng);
        }
        self.table.insert(row.clone(), Reader::Binlog);
        let source = self.next_source();
        let change = self.change(Op::Create, None, Some(row), source);
        self.queue.push_back(Message::Change {
            change,
            header: None,
        });
    }

    fn update(&mut self) {
        let id = self.table.pick(&mut self.rng);
        let Some(before) = self.table.remove(id) else {
            return;
        };
        let mut after = before.clone();
        after.mutate(&mut self.rng);
        if self.evolved && self.rng.gen_bool(0.5) {
            after.set_nickname(&mut self.rng);
        }
        self.table.insert(after.clone(), Reader::Binlog);
        let source = self.next_source();
        let change = self.change(Op::Update, Some(before), Some(after), source);
        self.queue.push_back(Message::Change {
            change,
            header: None,
        });
    }

    fn delete(&mut self) {
        let id = self.table.pick(&mut self.rng);
        let Some(before) = self.table.remove(id) else {
            return;
        };
        self.free.push(id);
        let source = self.next_source();
        let change = self.change(Op::Delete, Some(before), None, source);
        self.queue.push_back(Message::Change {
            change,
            header: None,
        });
        self.queue.push_back(Message::Tombstone {
            key: id,
            header: None,
        });
    }

    /// `UPDATE users SET id = <new> …`: one binlog row event, two Debezium records.
    fn change_key(&mut self) {
        let old_id = self.table.pick(&mut self.rng);
        let Some(before) = self.table.remove(old_id) else {
            return;
        };
        let new_id = self.new_id(0.3);
        self.free.push(old_id);
        let mut after = before.clone();
        after.id = new_id;
        if self.rng.gen_bool(0.5) {
            after.mutate(&mut self.rng);
        }
        self.table.insert(after.clone(), Reader::Binlog);
        let source = self.next_source();
        let new_key = Some(KeyHeader {
            name: NEW_KEY_HEADER,
            id: new_id,
        });
        let delete = self.change(Op::Delete, Some(before), None, source.clone());
        let create = self.change(Op::Create, None, Some(after), source);
        self.queue.push_back(Message::Change {
            change: delete,
            header: new_key,
        });
        self.queue.push_back(Message::Tombstone {
            key: old_id,
            header: new_key,
        });
        self.queue.push_back(Message::Change {
            change: create,
            header: Some(KeyHeader {
                name: OLD_KEY_HEADER,
                id: old_id,
            }),
        });
    }
}

impl Iterator for Workload {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if let Some(m) = self.queue.pop_front() {
            return Some(m);
        }
        if self.snapshotted < self.keys {
            return Some(self.snapshot_read());
        }
        if self.changes >= self.count {
            return None;
        }
        self.step();
        self.queue.pop_front()
    }
}

/// Live rows with O(1) random choice: a dense list of keys plus each key's slot in it.
#[derive(Default)]
struct Table {
    rows: HashMap<i32, (UserRow, Reader)>,
    ids: Vec<i32>,
    slot: HashMap<i32, usize>,
}

impl Table {
    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn insert(&mut self, row: UserRow, reader: Reader) {
        let id = row.id;
        if self.rows.insert(id, (row, reader)).is_none() {
            self.slot.insert(id, self.ids.len());
            self.ids.push(id);
        }
    }

    fn remove(&mut self, id: i32) -> Option<UserRow> {
        let (row, _) = self.rows.remove(&id)?;
        if let Some(i) = self.slot.remove(&id) {
            self.ids.swap_remove(i);
            if let Some(moved) = self.ids.get(i) {
                self.slot.insert(*moved, i);
            }
        }
        Some(row)
    }

    /// A random live key; only called on a non-empty table.
    fn pick(&self, rng: &mut StdRng) -> i32 {
        self.ids[rng.gen_range(0..self.ids.len())]
    }
}
