//! Confluent `AvroConverter` output of the same Debezium MySQL change events: the Connect
//! schemas of [`json`](super::json) in their Avro form ([`crate::gen::avro`]), registered under
//! `<topic>-key` / `<topic>-value` (`TopicNameStrategy`), each record in the wire format.
//!
//! Values go through the `schemas.enable=false` JSON payload, so the Avro and JSON outputs
//! cannot drift apart: one rendering of an event, two encodings.

use serde_json::{json, Value};

use super::json::{envelope_payload, key_schema, value_schema};
use super::workload::Change;
use super::{ChangeEncoder, Names};
use crate::gen::avro::{register, to_avro, with_id, Registered};
use crate::gen::GenError;

pub(crate) struct AvroEncoder {
    names: Names,
    key: Registered,
    value: Registered,
    /// The value schema after the `--evolve` `ALTER TABLE` (a second version of the subject).
    evolved: Option<Registered>,
    key_connect: Value,
    value_connect: Value,
    evolved_connect: Value,
}

impl AvroEncoder {
    /// Registers the key and value schemas (and the evolved value schema, if `evolve`) with
    /// the registry at `url`.
    pub(crate) async fn register(
        names: Names,
        topic: &str,
        url: &str,
        evolve: bool,
    ) -> Result<Self, GenError> {
        let mut registered = Vec::new();
        for (subject, connect) in Self::subjects(&names, evolve) {
            let r = register(url, &format!("{topic}-{subject}"), &connect).await?;
            registered.push((r, connect));
        }
        Self::from_registered(names, registered)
    }

    /// The subjects' suffixes and the Connect schemas registered under them, in order: key,
    /// value, and the evolved value.
    pub(crate) fn subjects(names: &Names, evolve: bool) -> Vec<(&'static str, Value)> {
        let mut subjects = vec![
            ("key", key_schema(names)),
            ("value", value_schema(names, false)),
        ];
        if evolve {
            subjects.push(("value", value_schema(names, true)));
        }
        subjects
    }

    /// An encoder whose schemas have the given ids (key, value, evolved value if any).
    pub(crate) fn with_ids(names: Names, ids: &[u32]) -> Result<Self, GenError> {
        let registered = Self::subjects(&names, ids.len() > 2)
            .into_iter()
            .zip(ids)
            .map(|((_, connect), id)| Ok((with_id(&connect, *id)?, connect)))
            .collect::<Result<Vec<_>, GenError>>()?;
        Self::from_registered(names, registered)
    }

    fn from_registered(
        names: Names,
        registered: Vec<(Registered, Value)>,
    ) -> Result<Self, GenError> {
        let mut registered = registered.into_iter();
        let mut next = || {
            registered
                .next()
                .ok_or_else(|| GenError::Registry("a schema id is missing".into()))
        };
        let (key, key_connect) = next()?;
        let (value, value_connect) = next()?;
        let (evolved, evolved_connect) = match next() {
            Ok((r, c)) => (Some(r), c),
            Err(_) => (None, value_connect.clone()),
        };
        Ok(AvroEncoder {
            names,
            key,
            value,
            evolved,
            key_connect,
            value_connect,
            evolved_connect,
        })
    }
}

impl ChangeEncoder for AvroEncoder {
    fn key(&self, id: i32) -> Vec<u8> {
        let value = to_avro(&self.key_connect, &json!({ "id": id }));
        self.key.frame(value)
    }

    fn value(&self, change: &Change) -> Vec<u8> {
        let payload: Value =
            serde_json::from_str(&envelope_payload(&self.names, change)).unwrap_or(Value::Null);
        match (&self.evolved, change.evolved) {
            (Some(evolved), true) => evolved.frame(to_avro(&self.evolved_connect, &payload)),
            _ => self.value.frame(to_avro(&self.value_connect, &payload)),
        }
    }
}
