//! The object store of an `s3://` data path as DuckDB sees it: the `httpfs` extension, its HTTP
//! client's retry and timeout settings, and a secret holding the credentials, scoped to the
//! data path; and how its failures read — transient (retried within `errors.retry.timeout`) or
//! a rejection no retry fixes (bad credentials, a missing bucket).
//!
//! The statement that creates the secret holds the credentials: it is executed, never logged,
//! and DuckDB's errors about it go through [`DbError`], which scrubs them.

use duckdb::Connection;

use super::{load_extension, DbError, LakeError};
use crate::config::ObjectStore;
use crate::sql;

/// DuckDB's HTTP client, set explicitly so that a DuckDB upgrade cannot change how outages
/// are handled. Each request is retried in place 3 times, 100 ms then ×4 (0.1 + 0.4 + 1.6 s):
/// a dropped keep-alive connection or a single 503 "slow down" costs a request, not the whole
/// flush. A longer outage fails the statement within ~2 s; the lake thread then retries the
/// whole flush on a fresh connection with its own backoff, for `errors.retry.timeout`.
/// `http_timeout` (seconds, per read/write, not per transfer) bounds a store that accepts
/// connections but stops answering; 30 s leaves room for a large multipart upload's completion,
/// which S3 may take several seconds to acknowledge.
const HTTP_SETTINGS: &str = "SET http_retries = 3;
     SET http_retry_wait_ms = 100;
     SET http_retry_backoff = 4;
     SET http_timeout = 30;
     SET http_keep_alive = true;";

/// Name of the DuckDB secret of the data path (temporary: it lives with the connection).
const SECRET_NAME: &str = "ducklake_sink_data";

/// Loads `httpfs`, sets its HTTP client up and creates the data path's secret: on every
/// connection, before the catalog is attached.
pub(super) fn configure(
    conn: &Connection,
    store: &ObjectStore,
    data_path: &str,
) -> Result<(), LakeError> {
    load_extension(conn, "httpfs")?;
    conn.execute_batch(HTTP_SETTINGS)
        .map_err(|source| LakeError::Sql {
            context: "cannot configure DuckDB's HTTP client".into(),
            source: DbError::from(source),
        })?;
    conn.execute_batch(&create_secret(store, data_path))
        .map_err(|source| LakeError::ObjectStore {
            endpoint: store.endpoint_name(),
            bucket: store.bucket.clone(),
            problem: "cannot create the DuckDB secret for the data path".into(),
            source: DbError::from(source),
        })
}

/// `CREATE TEMPORARY SECRET …` with the credentials: a secret itself, never to be logged.
fn create_secret(store: &ObjectStore, data_path: &str) -> String {
    let mut options = vec![
        "TYPE s3".to_owned(),
        format!("KEY_ID {}", sql::literal(&store.key_id)),
        format!("SECRET {}", sql::literal(&store.secret)),
        format!("REGION {}", sql::literal(&store.region)),
        format!("URL_STYLE {}", sql::literal(store.url_style.as_str())),
        format!("USE_SSL {}", store.use_ssl),
        format!("SCOPE {}", sql::literal(data_path)),
    ];
    if let Some(endpoint) = &store.endpoint {
        options.push(format!("ENDPOINT {}", sql::literal(endpoint)));
    }
    if let Some(token) = &store.session_token {
        options.push(format!("SESSION_TOKEN {}", sql::literal(token)));
    }
    format!(
        "CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} ({})",
        options.join(", ")
    )
}

/// What an object-store failure in DuckDB's error text means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The store was unreachable, timed out or failed on its side (5xx, 408, 429): a later
    /// attempt may succeed.
    Transient,
    /// The store answered with a client error (403 bad credentials or policy, 404 no such
    /// bucket, …): retrying sends the same request again.
    Rejected(u16),
}

/// Reads an object-store failure out of DuckDB's error text (`None`: not one). DuckDB's
/// httpfs writes the status as `(HTTP code 403)` or `(HTTP 403 Forbidden)`; without a status,
/// a connection that failed or broke names the HTTP request or the `s3://` URL.
pub(super) fn failure(text: &str) -> Option<Failure> {
    if let Some(status) = http_status(text) {
        return Some(match status {
            408 | 429 | 500..=599 => Failure::Transient,
            400..=499 => Failure::Rejected(status),
            _ => return None,
        });
    }
    let about_http = text.contains("HTTP ") || text.contains("s3://");
    let broken = [
        "Could not connect",
        "Connection error",
        "onnection refused",
        "onnection reset",
        "Broken pipe",
        "timed out",
        "Timeout",
        "timeout",
        "Failed to read",
        "Failed to write",
        "IO Error",
    ]
    .iter()
    .any(|needle| text.contains(needle));
    (about_http && broken).then_some(Failure::Transient)
}

fn http_status(text: &str) -> Option<u16> {
    ["(HTTP code ", "(HTTP "].iter().find_map(|marker| {
        text.match_indices(marker).find_map(|(at, m)| {
            let digits = text.get(at + m.len()..at + m.len() + 3)?;
            let after = text[at + m.len() + 3..].chars().next();
            (digits.chars().all(|c| c.is_ascii_digit()) && matches!(after, Some(')' | ' ')))
                .then(|| digits.parse().ok())
                .flatten()
        })
    })
}

/// What to tell the operator about a rejected request.
pub(super) fn rejection(status: u16, store: &ObjectStore) -> String {
    match status {
        401 | 403 => format!(
            "access denied (HTTP {status}): check the credentials (taken from {}) and the bucket's policy",
            if store.credentials_from.starts_with("AWS_") {
                "the environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            } else {
                "ducklake.s3.access.key.id / ducklake.s3.secret.access.key"
            }
        ),
        404 => "not found (HTTP 404): does the bucket exist there? (ducklake.data.path, ducklake.s3.endpoint, ducklake.s3.url.style)".to_owned(),
        _ => format!("request rejected (HTTP {status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UrlStyle;

    fn store() -> ObjectStore {
        ObjectStore {
            bucket: "lake".into(),
            endpoint: Some("127.0.0.1:9000".into()),
            region: "us-east-1".into(),
            url_style: UrlStyle::Path,
            use_ssl: false,
            key_id: "AKIA'x".into(),
            secret: "s3cr'et".into(),
            session_token: None,
            credentials_from: "ducklake.s3.access.key.id",
        }
    }

    /// DuckDB 1.5.5's texts, as seen against moto and a closed port.
    #[test]
    fn failures_are_read_from_duckdbs_text() {
        for (text, expected) in [
            ("IO Error: Could not connect to server error for HTTP PUT to 'http://127.0.0.1:5999/lake/x.parquet'", Some(Failure::Transient)),
            ("HTTP Error: Unable to connect to URL s3://lake/x.parquet: Service Unavailable (HTTP code 503)", Some(Failure::Transient)),
            ("HTTP Error: HTTP GET error reading 's3://lake/x' in region 'us-east-1' (HTTP 500 Internal Server Error)", Some(Failure::Transient)),
            ("HTTP Error: Unable to connect to URL s3://lake/x.parquet: Forbidden (HTTP code 403)\n\nInvalidAccessKeyId: …", Some(Failure::Rejected(403))),
            ("HTTP Error: HTTP GET error reading 's3://nobucket/x.parquet' in region 'us-east-1' (HTTP 404 Not Found)", Some(Failure::Rejected(404))),
            ("HTTP Error: Unable to connect to URL s3://nobucket/x.parquet: Not Found (HTTP code 404)\n\nNoSuchBucket", Some(Failure::Rejected(404))),
            ("IO Error: Parquet files do not support negative intervals", None),
            ("IO Error: Unable to connect to Postgres at host=127.0.0.1: Connection refused", None),
            ("Catalog Error: Table with name x does not exist!", None),
        ] {
            assert_eq!(failure(text), expected, "{text}");
        }
    }

    #[test]
    fn the_secret_statement_quotes_every_value() {
        let sql = create_secret(&store(), "s3://lake/pre'fix/");
        assert!(sql.contains("KEY_ID 'AKIA''x'"), "{sql}");
        assert!(sql.contains("SECRET 's3cr''et'"), "{sql}");
        assert!(sql.contains("SCOPE 's3://lake/pre''fix/'"), "{sql}");
        assert!(sql.contains("ENDPOINT '127.0.0.1:9000'"), "{sql}");
        assert!(
            sql.contains("URL_STYLE 'path'") && sql.contains("USE_SSL false"),
            "{sql}"
        );
        assert!(!sql.contains("SESSION_TOKEN"), "{sql}");
    }

    /// The statement against a real DuckDB with httpfs: the secret exists, scoped to the data
    /// path, with the settings given.
    #[test]
    fn the_secret_is_created_scoped_to_the_data_path() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("SET autoinstall_known_extensions = false")
            .unwrap();
        let mut s = store();
        s.session_token = Some("tok3n".into());
        configure(&conn, &s, "s3://lake/prefix/").unwrap();
        let (scope, provider): (String, String) = conn
            .query_row(
                "SELECT scope::VARCHAR, provider FROM duckdb_secrets() WHERE name = 'ducklake_sink_data'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(scope.contains("s3://lake/prefix/"), "{scope}");
        assert_eq!(provider, "config");
        let which: String = conn
            .query_row(
                "SELECT name FROM which_secret('s3://lake/prefix/t/x.parquet', 's3')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(which, SECRET_NAME);
        let timeout: i64 = conn
            .query_row("SELECT current_setting('http_timeout')::BIGINT", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(timeout, 30);
    }
}
