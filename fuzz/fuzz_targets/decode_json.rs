//! Any bytes as a record's key and value, through the JSON converters (with and without
//! schemas), Debezium envelope detection and the batch: errors are fine, panics are not.
#![no_main]

use std::time::Instant;

use ducklake_sink::batch::{Batch, Position, Target, TopicPartition};
use ducklake_sink::config::{Converter, InsertMode, PkMode};
use ducklake_sink::decode::{DecodeSettings, EnvelopeMode, RecordDecoder};
use ducklake_sink::shape::Evolution;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let split = rest.first().map_or(0, |b| usize::from(*b)).min(rest.len());
    let (key, value) = rest.split_at(split);
    let schemas = mode & 1 != 0;
    let settings = DecodeSettings {
        key_converter: Converter::Json {
            schemas_enable: schemas,
        },
        value_converter: Converter::Json {
            schemas_enable: mode & 2 != 0,
        },
        envelope: match (mode >> 2) & 3 {
            0 => EnvelopeMode::Auto,
            1 => EnvelopeMode::Debezium,
            _ => EnvelopeMode::None,
        },
        insert_mode: if mode & 16 != 0 {
            InsertMode::Upsert
        } else {
            InsertMode::Append
        },
        pk_mode: if mode & 32 != 0 {
            PkMode::RecordKey
        } else {
            PkMode::RecordValue
        },
        pk_fields: Vec::new(),
        delete_enabled: mode & 64 != 0,
        truncate_enabled: mode & 128 != 0,
    };
    let mut decoder = RecordDecoder::new(settings);
    let key = (!key.is_empty()).then_some(key);
    let value = (!value.is_empty()).then_some(value);
    let Ok(record) = decoder.decode("dbserver1.inventory.users", key, value) else {
        return;
    };
    let tp = TopicPartition {
        topic: "t".into(),
        partition: 0,
    };
    let target = Target {
        table: "t",
        columns: None,
        evolution: Evolution {
            auto_create: true,
            auto_evolve: true,
        },
    };
    let at = Position {
        tp: &tp,
        offset: 0,
        timestamp_ms: None,
        bytes: data.len(),
        now: Instant::now(),
    };
    let _ = Batch::default().put(&target, record.change, &at);
});
