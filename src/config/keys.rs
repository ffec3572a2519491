//! The vocabulary of connector files: known keys, did-you-mean, secret detection.

/// Every `config` key the sink understands (besides `consumer.override.*`).
pub const KNOWN_KEYS: &[&str] = &[
    "name",
    "connector.class",
    "tasks.max",
    "topics",
    "topics.regex",
    "key.converter",
    "key.converter.schemas.enable",
    "value.converter",
    "value.converter.schemas.enable",
    "ducklake.catalog",
    "ducklake.data.path",
    "ducklake.schema",
    "ducklake.data.inlining.row.limit",
    "ducklake.maintenance.interval.ms",
    "ducklake.maintenance.changes",
    "ducklake.maintenance.max.files",
    "ducklake.rewrite.delete.threshold",
    "ducklake.snapshot.retention.ms",
    "ducklake.threads",
    "ducklake.memory.limit",
    "ducklake.parquet.compression",
    "ducklake.parquet.compression.level",
    "ducklake.parquet.row.group.size",
    "ducklake.parquet.version",
    "ducklake.s3.endpoint",
    "ducklake.s3.region",
    "ducklake.s3.url.style",
    "ducklake.s3.use.ssl",
    "ducklake.s3.access.key.id",
    "ducklake.s3.secret.access.key",
    "ducklake.s3.session.token",
    "table.name.format",
    "auto.create",
    "insert.mode",
    "pk.mode",
    "pk.fields",
    "delete.enabled",
    "truncate.enabled",
    "cdc.envelope",
    "auto.evolve",
    "flush.max.records",
    "flush.max.bytes",
    "flush.interval.ms",
    "errors.tolerance",
    "errors.deadletterqueue.topic.name",
    "errors.deadletterqueue.topic.replication.factor",
    "errors.deadletterqueue.context.headers.enable",
    "errors.log.enable",
    "errors.log.include.messages",
    "errors.retry.timeout",
    "errors.retry.delay.max.ms",
];

/// Converter settings Connect passes through to the converter; accepted for both key and
/// value converters so files written for Connect carry over.
const CONVERTER_SUBKEYS: &[&str] = &[
    "schema.registry.url",
    "basic.auth.credentials.source",
    "basic.auth.user.info",
    "schemas.cache.size",
    "decimal.format",
    "replace.null.with.default",
    "encoding",
];

pub(super) fn is_converter_subkey(key: &str) -> bool {
    ["key.converter.", "value.converter."].iter().any(|prefix| {
        key.strip_prefix(prefix)
            .is_some_and(|rest| CONVERTER_SUBKEYS.contains(&rest))
    })
}

/// Whether a librdkafka property holds a secret that must never be printed.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "user.info", "jaas", "token"]
        .iter()
        .any(|word| k.contains(word))
        || k.ends_with(".key")
        || k.ends_with(".key.id")
}

/// The closest known key, if it is close enough to be a plausible typo.
pub(super) fn did_you_mean(key: &str) -> Option<&'static str> {
    let candidates = KNOWN_KEYS.iter().copied().chain([
        "consumer.override.auto.offset.reset",
        "consumer.override.session.timeout.ms",
    ]);
    let (best, distance) = candidates
        .map(|c| (c, levenshtein(key, c)))
        .min_by_key(|&(_, d)| d)?;
    (distance <= (key.len() / 3).max(2)).then_some(best)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key_for_typos() {
        assert_eq!(did_you_mean("flush.max.record"), Some("flush.max.records"));
        assert_eq!(did_you_mean("topic"), Some("topics"));
        assert_eq!(did_you_mean("ducklake.catalgo"), Some("ducklake.catalog"));
        assert_eq!(did_you_mean("completely.unrelated.setting.name"), None);
    }

    #[test]
    fn converter_subkeys_are_accepted_only_when_known() {
        assert!(is_converter_subkey("value.converter.schema.registry.url"));
        assert!(!is_converter_subkey("value.converter.schema.registry.ulr"));
        assert!(!is_converter_subkey("flush.max.records"));
    }
}
