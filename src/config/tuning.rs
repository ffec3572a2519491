//! How the lake connection does its work: DuckDB's threads and memory, and the Parquet files
//! DuckLake writes. Defaults come from measurement on small machines (README, "Measured").
//!
//! The Parquet keys are DuckLake options, stored in the catalog for the connector's schema (so
//! other schemas of a shared lake keep theirs); an absent key leaves the lake's own setting.

use super::{key_err, ConfigError, Raw};

/// Parquet codecs DuckLake accepts for `parquet_compression`.
pub const COMPRESSIONS: &[&str] = &[
    "uncompressed",
    "snappy",
    "gzip",
    "zstd",
    "brotli",
    "lz4",
    "lz4_raw",
];

/// Threads DuckDB runs the lake connection's work on when `ducklake.threads` is not given.
/// One: the flush is one transaction on one connection, and on a machine shared with the
/// pipeline thread and librdkafka more threads mostly add hand-off between them.
pub const DEFAULT_THREADS: u32 = 1;

/// The smallest Parquet row group DuckDB writes (its vector size).
const MIN_ROW_GROUP: u64 = 2048;

/// `ducklake.threads`, `ducklake.memory.limit`, `ducklake.parquet.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeTuning {
    /// DuckDB's `threads` for the lake connection.
    pub threads: u32,
    /// DuckDB's `memory_limit` (e.g. `512MB`); `None`: DuckDB's default, 80 % of the RAM.
    pub memory_limit: Option<String>,
    /// Options DuckLake applies to the Parquet files it writes for the connector's schema.
    pub parquet: ParquetOptions,
}

impl Default for LakeTuning {
    fn default() -> Self {
        Self {
            threads: DEFAULT_THREADS,
            memory_limit: None,
            parquet: ParquetOptions::default(),
        }
    }
}

/// DuckLake Parquet options; `None` leaves the lake's own value (DuckLake's default: snappy,
/// 122,880-row groups, format version 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParquetOptions {
    pub compression: Option<String>,
    pub compression_level: Option<i32>,
    pub row_group_size: Option<u64>,
    pub version: Option<u8>,
}

impl ParquetOptions {
    /// `(DuckLake option name, SQL literal value)` for each option given.
    pub fn options(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(c) = &self.compression {
            out.push(("parquet_compression", c.clone()));
        }
        if let Some(level) = self.compression_level {
            out.push(("parquet_compression_level", level.to_string()));
        }
        if let Some(rows) = self.row_group_size {
            out.push(("parquet_row_group_size", rows.to_string()));
        }
        if let Some(v) = self.version {
            out.push(("parquet_version", v.to_string()));
        }
        out
    }
}

impl Raw {
    pub(super) fn tuning(&mut self) -> Result<LakeTuning, ConfigError> {
        let threads = match self.take_parsed::<u32>("ducklake.threads", "a positive integer")? {
            None => DEFAULT_THREADS,
            Some(0) => {
                return Err(key_err(
                    &self.file,
                    "ducklake.threads",
                    "expected a positive integer, got `0`",
                ))
            }
            Some(n) => n,
        };
        let memory_limit = match self.take("ducklake.memory.limit") {
            None => None,
            Some(v) => Some(memory_size(&v).ok_or_else(|| {
                key_err(
                    &self.file,
                    "ducklake.memory.limit",
                    &format!(
                        "expected a size such as 512MB or 2GiB (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got `{v}`"
                    ),
                )
            })?),
        };
        let compression = match self.take("ducklake.parquet.compression") {
            None => None,
            Some(v) => {
                let c = v.trim().to_ascii_lowercase();
                if !COMPRESSIONS.contains(&c.as_str()) {
                    return Err(key_err(
                        &self.file,
                        "ducklake.parquet.compression",
                        &format!("expected one of {}, got `{v}`", COMPRESSIONS.join(", ")),
                    ));
                }
                Some(c)
            }
        };
        let compression_level =
            self.take_parsed::<i32>("ducklake.parquet.compression.level", "an integer")?;
        if let Some(level) = compression_level {
            // DuckDB's Parquet writer uses a level with zstd only.
            if compression.as_deref() != Some("zstd") {
                return Err(key_err(
                    &self.file,
                    "ducklake.parquet.compression.level",
                    "applies to zstd only; set ducklake.parquet.compression=zstd in the same file",
                ));
            }
            if !(1..=22).contains(&level) {
                return Err(key_err(
                    &self.file,
                    "ducklake.parquet.compression.level",
                    &format!("expected 1 to 22 for zstd, got `{level}`"),
                ));
            }
        }
        let row_group_size =
            match self.take_parsed::<u64>("ducklake.parquet.row.group.size", "a number of rows")? {
                Some(n) if n < MIN_ROW_GROUP => {
                    return Err(key_err(
                        &self.file,
                        "ducklake.parquet.row.group.size",
                        &format!(
                        "expected at least {MIN_ROW_GROUP} rows (DuckDB's vector size), got `{n}`"
                    ),
                    ))
                }
                other => other,
            };
        let version = match self.take_parsed::<u8>("ducklake.parquet.version", "1 or 2")? {
            Some(v @ (1 | 2)) => Some(v),
            Some(v) => {
                return Err(key_err(
                    &self.file,
                    "ducklake.parquet.version",
                    &format!("expected 1 or 2, got `{v}`"),
                ))
            }
            None => None,
        };
        Ok(LakeTuning {
            threads,
            memory_limit,
            parquet: ParquetOptions {
                compression,
                compression_level,
                row_group_size,
                version,
            },
        })
    }
}

/// A DuckDB memory size (`512MB`, `1.5 GiB`), normalised to `<number><unit>`; `None` if it is
/// not one. Checked here so a typo stops the file's load, not the lake thread's start.
fn memory_size(text: &str) -> Option<String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().ok()?;
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let unit = unit.trim().to_ascii_uppercase();
    let known = ["B", "KB", "MB", "GB", "TB", "KIB", "MIB", "GIB", "TIB"];
    if !known.contains(&unit.as_str()) {
        return None;
    }
    // DuckDB spells the binary units KiB, MiB...
    let unit = unit.replace("IB", "iB");
    Some(format!("{number}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_are_normalised_or_refused() {
        assert_eq!(memory_size("512MB").as_deref(), Some("512MB"));
        assert_eq!(memory_size(" 1.5 gib ").as_deref(), Some("1.5GiB"));
        assert_eq!(memory_size("100kb").as_deref(), Some("100KB"));
        for bad in [
            "",
            "MB",
            "0MB",
            "12",
            "12 parsecs",
            "-1GB",
            "1e3MB",
            "1..2GB",
        ] {
            assert_eq!(memory_size(bad), None, "{bad}");
        }
    }
}
