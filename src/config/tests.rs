use super::*;

fn parse(text: &str) -> Result<ConnectorConfig, ConfigError> {
    ConnectorConfig::parse(Path::new("conn.json"), text)
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

const MINIMAL: &str = r#"{"name":"orders","config":{"connector.class":"DuckLakeSink","topics":"orders","ducklake.catalog":"metadata/o.ducklake"}}"#;

#[test]
fn minimal_file_gets_connect_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.name, "orders");
    assert_eq!(c.group_id(), "connect-orders");
    assert_eq!(c.topics, Topics::List(vec!["orders".into()]));
    assert_eq!(
        c.value_converter,
        Converter::Json {
            schemas_enable: true
        }
    );
    assert_eq!(c.key_converter, Converter::String);
    assert_eq!(c.schema, "main");
    assert_eq!(c.table_name_format, "${topic}");
    assert_eq!(c.data_path, "data/");
    assert!(!c.auto_create);
}

#[test]
fn scalars_and_strings_are_both_accepted() {
    let c = parse(r#"{"name":"o","config":{"connector.class":"io.example.DuckLakeSinkConnector","topics":"a, b","ducklake.catalog":"ducklake:x.db",
        "flush.max.records":500,"flush.interval.ms":"250","auto.create":true,"value.converter":"org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable":"false","consumer.override.session.timeout.ms":6000,"tasks.max":"1"}}"#)
    .unwrap();
    assert_eq!(c.topics, Topics::List(vec!["a".into(), "b".into()]));
    assert_eq!(c.catalog, "x.db");
    assert_eq!(c.flush_max_records, 500);
    assert_eq!(c.flush_interval_ms, 250);
    assert!(c.auto_create);
    assert_eq!(
        c.value_converter,
        Converter::Json {
            schemas_enable: false
        }
    );
    assert_eq!(
        c.consumer_overrides
            .get("session.timeout.ms")
            .map(String::as_str),
        Some("6000")
    );
}

#[test]
fn unknown_key_names_file_key_and_suggestion() {
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x","flush.max.record":"5"}}"#,
    );
    assert_eq!(
        e,
        "conn.json: key `flush.max.record`: unknown key; did you mean `flush.max.records`?"
    );
}

/// Connect files often carry SMTs; the sink runs none, so it says what it does instead.
#[test]
fn transforms_are_refused_naming_what_the_sink_does_instead() {
    let with = |transforms: &str| {
        format!(
            r#"{{"name":"o","config":{{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x",{transforms}}}}}"#
        )
    };
    let e = err(&with(
        r#""transforms":"unwrap","transforms.unwrap.type":"io.debezium.transforms.ExtractNewRecordState","transforms.unwrap.drop.tombstones":"false""#,
    ));
    assert!(
        e.starts_with("conn.json: key `transforms`: single message transforms are not run by this sink; `unwrap` (io.debezium.transforms.ExtractNewRecordState): the sink applies Debezium change events itself"),
        "{e}"
    );
    let e = err(&with(
        r#""transforms":" route , unwrap","transforms.route.type":"org.apache.kafka.connect.transforms.RegexRouter","transforms.route.regex":"([^.]+)\\.([^.]+)\\.([^.]+)","transforms.route.replacement":"$3""#,
    ));
    assert!(e.contains("`route` (org.apache.kafka.connect.transforms.RegexRouter): name tables with `table.name.format`"), "{e}");
    let e = err(&with(r#""transforms":"x""#));
    assert!(e.contains("`x` (no type): remove it"), "{e}");
    // An empty list, and keys of aliases not listed, are what Connect ignores.
    parse(&with(r#""transforms":"","transforms.old.type":"org.apache.kafka.connect.transforms.RegexRouter""#))
        .unwrap();
}

#[test]
fn wrong_types_are_named() {
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x","flush.interval.ms":"soon"}}"#,
    );
    assert_eq!(
        e,
        "conn.json: key `flush.interval.ms`: expected a positive integer, got `soon`"
    );
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x","auto.create":"yes"}}"#,
    );
    assert_eq!(
        e,
        "conn.json: key `auto.create`: expected true or false, got `yes`"
    );
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x","flush.max.records":[1]}}"#,
    );
    assert!(
        e.contains("key `flush.max.records`: expected a string or a scalar"),
        "{e}"
    );
}

#[test]
fn missing_required_keys_are_named() {
    let e = err(r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t"}}"#);
    assert_eq!(e, "conn.json: missing required key `ducklake.catalog`");
    let e =
        err(r#"{"name":"o","config":{"connector.class":"DuckLakeSink","ducklake.catalog":"x"}}"#);
    assert_eq!(
        e,
        "conn.json: missing required key `topics` (or `topics.regex`)"
    );
    let e =
        err(r#"{"config":{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x"}}"#);
    assert_eq!(e, "conn.json: missing required key `name`");
}

#[test]
fn conflicting_keys_are_refused() {
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t","topics.regex":"t.*","ducklake.catalog":"x"}}"#,
    );
    assert_eq!(
        e,
        "conn.json: key `topics.regex`: conflicts with `topics`: set exactly one of them"
    );
    let e = err(
        r#"{"name":"o","config":{"name":"p","connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x"}}"#,
    );
    assert!(e.contains("key `name`: top-level name `o` differs"), "{e}");
}

#[test]
fn sink_managed_consumer_settings_cannot_be_overridden() {
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x","consumer.override.enable.auto.commit":"true"}}"#,
    );
    assert!(
        e.contains("key `consumer.override.enable.auto.commit`: is managed by the sink"),
        "{e}"
    );
}

#[test]
fn mysql_catalogs_and_foreign_connectors_are_refused() {
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"mysql:db=x"}}"#,
    );
    assert!(
        e.contains("key `ducklake.catalog`: MySQL/MariaDB catalogs are broken"),
        "{e}"
    );
    let e = err(
        r#"{"name":"o","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","topics":"t","ducklake.catalog":"x"}}"#,
    );
    assert!(e.contains("key `connector.class`"), "{e}");
}

#[test]
fn broken_json_says_so() {
    let e = err("{\"name\": ");
    assert!(e.starts_with("conn.json: not valid JSON"), "{e}");
    let e = err("[]");
    assert!(e.contains("expected a JSON object"), "{e}");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let c = parse(r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"t",
        "ducklake.catalog":"postgres:dbname=lake host=db password=hunter2","consumer.override.sasl.password":"hunter2"}}"#)
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password=[redacted]"), "{shown}");
}

fn with(extra: &str) -> String {
    format!(
        r#"{{"name":"o","config":{{"connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x"{extra}}}}}"#
    )
}

#[test]
fn upsert_settings_are_read_together() {
    let c = parse(&with(
        r#","insert.mode":"upsert","pk.mode":"record_value","pk.fields":" id, region ","delete.enabled":"true","truncate.enabled":true,"cdc.envelope":"debezium""#,
    ))
    .unwrap();
    assert_eq!(
        c.apply,
        ApplySettings {
            insert_mode: InsertMode::Upsert,
            pk_mode: PkMode::RecordValue,
            pk_fields: vec!["id".into(), "region".into()],
            delete_enabled: true,
            truncate_enabled: true,
            envelope: EnvelopeMode::Debezium,
        }
    );
    let d = parse(MINIMAL).unwrap().apply;
    assert_eq!(d.insert_mode, InsertMode::Append);
    assert!(!d.delete_enabled && !d.truncate_enabled);
    assert_eq!(d.envelope, EnvelopeMode::Auto);
}

#[test]
fn upsert_and_delete_settings_that_cannot_work_are_refused() {
    let e = err(&with(r#","insert.mode":"upsert""#));
    assert!(
        e.contains("key `pk.mode`: insert.mode=upsert needs a primary key"),
        "{e}"
    );
    let e = err(&with(r#","delete.enabled":"true""#));
    assert!(
        e.contains("key `delete.enabled`: deletes need a primary key"),
        "{e}"
    );
    let e = err(&with(r#","insert.mode":"merge""#));
    assert!(
        e.contains("key `insert.mode`: expected append or upsert, got `merge`"),
        "{e}"
    );
    let e = err(&with(r#","insert.mode":"upsert","pk.mode":"kafka""#));
    assert!(
        e.contains("key `pk.mode`: pk.mode=kafka is not supported"),
        "{e}"
    );
    let e = err(&with(r#","cdc.envelope":"maybe""#));
    assert!(e.contains("key `cdc.envelope`"), "{e}");
    let e = err(&with(r#","pk.fields":"id""#));
    assert!(e.contains("key `pk.fields`: has no effect"), "{e}");
}

#[test]
fn the_example_connector_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("connector-config");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let class = doc["config"]["connector.class"]
            .as_str()
            .unwrap_or_default();
        if class.contains("DuckLakeSink") {
            ConnectorConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn dead_letter_queue_settings_use_connects_keys() {
    let c = parse(&with(
        r#","errors.tolerance":"all","errors.deadletterqueue.topic.name":"dlq-orders","errors.deadletterqueue.context.headers.enable":true,"errors.deadletterqueue.topic.replication.factor":"1","errors.log.enable":"true","errors.log.include.messages":"true""#,
    ))
    .unwrap();
    assert_eq!(
        c.errors,
        ErrorHandling {
            tolerate: true,
            dlq_topic: Some("dlq-orders".into()),
            dlq_replication_factor: 1,
            dlq_context_headers: true,
            log: true,
            log_messages: true,
        }
    );
    let e = err(&with(r#","errors.deadletterqueue.topic.name":"dlq""#));
    assert!(e.contains("needs errors.tolerance=all"), "{e}");
    let e = err(&with(r#","errors.tolerance":"some""#));
    assert!(e.contains("expected none or all"), "{e}");
    assert!(!parse(MINIMAL).unwrap().errors.tolerate);
}

#[test]
fn avro_converters_take_their_registry_settings_and_hide_the_password() {
    let c = parse(&with(
        r#","value.converter":"io.confluent.connect.avro.AvroConverter","value.converter.schema.registry.url":"http://r1:8081/, http://r2:8081","value.converter.basic.auth.credentials.source":"USER_INFO","value.converter.basic.auth.user.info":"sink:s3cret","key.converter":"io.confluent.connect.avro.AvroConverter","key.converter.schema.registry.url":"http://r1:8081""#,
    ))
    .unwrap();
    assert_eq!(c.value_converter, Converter::Avro);
    assert_eq!(
        c.value_registry,
        Some(RegistryConfig {
            urls: vec!["http://r1:8081".into(), "http://r2:8081".into()],
            user_info: Some("sink:s3cret".into()),
        })
    );
    assert_eq!(c.key_registry.as_ref().unwrap().user_info, None);
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    let e = err(&with(
        r#","value.converter":"io.confluent.connect.avro.AvroConverter""#,
    ));
    assert!(
        e.contains("key `value.converter.schema.registry.url`: AvroConverter needs"),
        "{e}"
    );
    let e = err(&with(
        r#","value.converter":"io.confluent.connect.avro.AvroConverter","value.converter.schema.registry.url":"r1:8081""#,
    ));
    assert!(e.contains("not an http"), "{e}");
    let e = err(&with(
        r#","value.converter":"io.confluent.connect.avro.AvroConverter","value.converter.schema.registry.url":"http://r","value.converter.basic.auth.credentials.source":"SASL_INHERIT""#,
    ));
    assert!(e.contains("only USER_INFO"), "{e}");
    // The older key spelling works too.
    let c = parse(&with(
        r#","value.converter":"io.confluent.connect.avro.AvroConverter","value.converter.schema.registry.url":"http://r","value.converter.basic.auth.credentials.source":"USER_INFO","value.converter.schema.registry.basic.auth.user.info":"u:p""#,
    ))
    .unwrap();
    assert_eq!(c.value_registry.unwrap().user_info.as_deref(), Some("u:p"));
}

#[test]
fn secrets_are_scrubbed_from_library_error_text() {
    assert_eq!(
        scrub_secrets(r#"at "dbname=lake password=hunter2": refused; PASSWORD=x secret=s3 end"#),
        r#"at "dbname=lake password=[redacted]": refused; PASSWORD=[redacted] secret=[redacted] end"#
    );
    assert_eq!(scrub_secrets("password="), "password=[redacted]");
    assert_eq!(scrub_secrets("nothing here"), "nothing here");
}

#[test]
fn the_rest_config_hides_secrets_as_connect_shows_passwords() {
    let config: BTreeMap<String, String> = [
        (
            "ducklake.catalog",
            "postgres:dbname=lake host=h password=hunter2",
        ),
        (
            "consumer.override.sasl.jaas.config",
            "PlainLoginModule username=u password=p2",
        ),
        ("consumer.override.sasl.password", "p3"),
        ("value.converter.basic.auth.user.info", "u:p4"),
        ("ducklake.s3.secret.access.key", "p5"),
        ("ducklake.s3.session.token", "p6"),
        (
            "value.converter.schema.registry.url",
            "http://u:p7@reg:8081,http://plain:8082",
        ),
        ("topics", "orders"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let shown = shown_config(&config);
    let all = format!("{shown:?}");
    for secret in ["hunter2", "p2", "p3", "p4", "p5", "p6", "p7"] {
        assert!(!all.contains(secret), "{secret} shown in {all}");
    }
    assert_eq!(
        shown["ducklake.catalog"],
        "postgres:dbname=lake host=h password=[hidden]"
    );
    assert_eq!(shown["ducklake.s3.session.token"], HIDDEN);
    assert_eq!(
        shown["value.converter.schema.registry.url"],
        "http://u:[hidden]@reg:8081,http://plain:8082"
    );
    assert_eq!(shown["topics"], "orders");
}

#[test]
fn lake_tuning_keys_parse_with_measured_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.tuning.threads, tuning::DEFAULT_THREADS);
    assert_eq!(c.tuning.memory_limit, None);
    assert!(c.tuning.parquet.options().is_empty());

    let c = parse(r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"o","ducklake.catalog":"x.db",
        "ducklake.threads":2,"ducklake.memory.limit":"256 mib","ducklake.parquet.compression":"ZSTD",
        "ducklake.parquet.compression.level":"9","ducklake.parquet.row.group.size":"65536","ducklake.parquet.version":2}}"#)
    .unwrap();
    assert_eq!(c.tuning.threads, 2);
    assert_eq!(c.tuning.memory_limit.as_deref(), Some("256MiB"));
    assert_eq!(
        c.tuning.parquet.options(),
        [
            ("parquet_compression", "zstd".to_owned()),
            ("parquet_compression_level", "9".to_owned()),
            ("parquet_row_group_size", "65536".to_owned()),
            ("parquet_version", "2".to_owned()),
        ]
    );
}

#[test]
fn bad_lake_tuning_values_are_refused_naming_the_key() {
    let with = |key: &str, value: &str| {
        err(&format!(
            r#"{{"name":"o","config":{{"connector.class":"DuckLakeSink","topics":"o","ducklake.catalog":"x.db","{key}":"{value}"}}}}"#
        ))
    };
    for (key, value, needle) in [
        ("ducklake.threads", "0", "positive integer"),
        ("ducklake.threads", "many", "positive integer"),
        ("ducklake.memory.limit", "lots", "512MB"),
        ("ducklake.memory.limit", "0GB", "512MB"),
        ("ducklake.parquet.compression", "lzo", "snappy, gzip, zstd"),
        ("ducklake.parquet.row.group.size", "100", "at least 2048"),
        ("ducklake.parquet.version", "3", "1 or 2"),
        ("ducklake.parquet.compression.level", "3", "zstd only"),
    ] {
        let e = with(key, value);
        assert!(e.contains("conn.json") && e.contains(key), "{e}");
        assert!(e.contains(needle), "{key}={value}: {e}");
    }
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"o","ducklake.catalog":"x.db",
        "ducklake.parquet.compression":"zstd","ducklake.parquet.compression.level":"23"}}"#,
    );
    assert!(
        e.contains("ducklake.parquet.compression.level") && e.contains("22"),
        "{e}"
    );
    let e = err(
        r#"{"name":"o","config":{"connector.class":"DuckLakeSink","topics":"o","ducklake.catalog":"x.db",
        "ducklake.parquet.compresion":"zstd"}}"#,
    );
    assert!(e.contains("ducklake.parquet.compression"), "{e}");
}

#[test]
fn keyed_connectors_flush_more_records_by_default_and_keep_an_explicit_cap() {
    let base = r#""connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x""#;
    let upsert = r#""insert.mode":"upsert","pk.mode":"record_key""#;
    let append = parse(&format!(r#"{{"name":"o","config":{{{base}}}}}"#)).unwrap();
    let keyed = parse(&format!(r#"{{"name":"o","config":{{{base},{upsert}}}}}"#)).unwrap();
    assert!(keyed.flush_max_records > append.flush_max_records);
    let capped = parse(&format!(
        r#"{{"name":"o","config":{{{base},{upsert},"flush.max.records":"250"}}}}"#
    ))
    .unwrap();
    assert_eq!(capped.flush_max_records, 250);
    let zero = parse(&format!(
        r#"{{"name":"o","config":{{{base},{upsert},"flush.max.records":"0"}}}}"#
    ))
    .unwrap_err()
    .to_string();
    assert!(zero.contains("key `flush.max.records`"), "{zero}");
}

#[test]
fn maintenance_thresholds_are_parsed_and_checked() {
    let base = r#""connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x""#;
    let c = parse(&format!(
        r#"{{"name":"o","config":{{{base},"ducklake.maintenance.changes":"5000","ducklake.rewrite.delete.threshold":"0.25","ducklake.maintenance.max.files":"2"}}}}"#
    ))
    .unwrap();
    assert_eq!(c.maintenance_changes, 5000);
    assert_eq!(c.maintenance_max_files, 2);
    assert_eq!(c.rewrite_delete_threshold, 0.25);
    for bad in ["1.5", "-0.1", "NaN", "half"] {
        let e = parse(&format!(
            r#"{{"name":"o","config":{{{base},"ducklake.rewrite.delete.threshold":"{bad}"}}}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "key `ducklake.rewrite.delete.threshold`: expected a fraction between 0 and 1"
            ),
            "{bad}: {e}"
        );
    }
    let e = parse(&format!(
        r#"{{"name":"o","config":{{{base},"ducklake.maintenance.changes":"-1"}}}}"#
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("key `ducklake.maintenance.changes`"), "{e}");
    let e = parse(&format!(
        r#"{{"name":"o","config":{{{base},"ducklake.maintenance.max.files":"0"}}}}"#
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("key `ducklake.maintenance.max.files`"), "{e}");
}
