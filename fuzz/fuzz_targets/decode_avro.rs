//! Any bytes as a Confluent-Avro record under a Debezium-shaped writer schema, through the
//! Avro decoder and then the record decoder's Debezium envelope handling (and any text as a
//! registry schema): errors are fine, panics and runaway allocations are not.
#![no_main]

use std::sync::{Arc, OnceLock};

use ducklake_sink::config::{Converter, InsertMode, PkMode};
use ducklake_sink::decode::avro::{AvroDecoder, AvroSchema};
use ducklake_sink::decode::{DecodeSettings, EnvelopeMode, RecordDecoder, Side};
use libfuzzer_sys::fuzz_target;

const ENVELOPE: &str = r#"{"type":"record","name":"Envelope","namespace":"fz","fields":[
  {"name":"before","default":null,"type":["null",{"type":"record","name":"Value","fields":[
    {"name":"id","type":"int"},
    {"name":"name","type":["null","string"],"default":null},
    {"name":"amount","type":["null",{"type":"bytes","logicalType":"decimal","precision":10,"scale":2,
      "connect.name":"org.apache.kafka.connect.data.Decimal","connect.parameters":{"scale":"2"}}],"default":null},
    {"name":"day","type":["null",{"type":"int","connect.name":"io.debezium.time.Date"}],"default":null},
    {"name":"n","type":["null",{"type":"record","name":"VariableScaleDecimal","namespace":"io.debezium.data",
      "connect.name":"io.debezium.data.VariableScaleDecimal","fields":[{"name":"scale","type":"int"},{"name":"value","type":"bytes"}]}],"default":null},
    {"name":"tags","type":["null",{"type":"array","items":"string"}],"default":null},
    {"name":"m","type":["null",{"type":"map","values":"double"}],"default":null},
    {"name":"e","type":["null",{"type":"enum","name":"E","symbols":["A","B"]}],"default":null},
    {"name":"f","type":["null",{"type":"fixed","name":"F","size":4}],"default":null},
    {"name":"u","type":["null","int","string"],"default":null}]}]},
  {"name":"after","type":["null","Value"],"default":null},
  {"name":"op","type":"string"}]}"#;

fn decoder() -> &'static AvroDecoder {
    static DECODER: OnceLock<AvroDecoder> = OnceLock::new();
    DECODER.get_or_init(|| {
        let mut d = AvroDecoder::default();
        d.add(1, schema());
        d
    })
}

fn schema() -> Arc<AvroSchema> {
    static SCHEMA: OnceLock<Arc<AvroSchema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Arc::new(AvroSchema::parse(ENVELOPE, &[]).expect("the schema parses")))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let mut framed = vec![0, 0, 0, 0, 1];
    framed.extend_from_slice(data);
    let _ = decoder().decode(&framed);
    let _ = decoder().decode(data);
    // The whole record path: a Debezium envelope upserted by its `id` field.
    let mut record = RecordDecoder::new(DecodeSettings {
        key_converter: Converter::String,
        value_converter: Converter::Avro,
        envelope: EnvelopeMode::Auto,
        insert_mode: InsertMode::Upsert,
        pk_mode: PkMode::RecordValue,
        pk_fields: vec!["id".into()],
        delete_enabled: true,
        truncate_enabled: true,
    });
    record.add_schema(Side::Value, 1, schema());
    let _ = record.decode("fz.public.t", Some(b"k"), Some(&framed));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = AvroSchema::parse(text, &[]);
    }
});
