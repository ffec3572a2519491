//! Object storage for the lake's data files: `ducklake.data.path=s3://bucket/prefix/` on AWS S3
//! or any S3-compatible store (MinIO, Ceph, R2, moto …).
//!
//! Contract: the store's settings come from the connector file's `ducklake.s3.*` keys, each
//! falling back to the standard AWS environment variable; the access key id and the secret are
//! taken as a pair from one place (the file, or the environment), never mixed. Everything is
//! resolved and checked when the file is loaded, so `validate` reports a missing credential with
//! the key or variable to set. The key id, the secret and the session token are secrets: never
//! printed, and registered with [`super::register_secret`] so they are scrubbed from any
//! library's error text.

use std::fmt;
use std::path::Path;

use super::{key_err, ConfigError};

/// The connector file's keys of the object store.
pub const KEYS: &[&str] = &[
    ENDPOINT,
    REGION,
    URL_STYLE,
    USE_SSL,
    KEY_ID,
    SECRET,
    SESSION_TOKEN,
];

const ENDPOINT: &str = "ducklake.s3.endpoint";
const REGION: &str = "ducklake.s3.region";
const URL_STYLE: &str = "ducklake.s3.url.style";
const USE_SSL: &str = "ducklake.s3.use.ssl";
const KEY_ID: &str = "ducklake.s3.access.key.id";
const SECRET: &str = "ducklake.s3.secret.access.key";
const SESSION_TOKEN: &str = "ducklake.s3.session.token";
const DATA_PATH: &str = "ducklake.data.path";

/// Region when neither the file nor the environment names one (DuckDB's and the AWS CLI's).
pub const DEFAULT_REGION: &str = "us-east-1";

/// How bucket names go into request URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlStyle {
    /// `https://bucket.endpoint/key` (AWS's default).
    Vhost,
    /// `https://endpoint/bucket/key` (what MinIO and most self-hosted stores need).
    Path,
}

impl UrlStyle {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Vhost => "vhost",
            Self::Path => "path",
        }
    }
}

/// The resolved object store of an `s3://` data path.
#[derive(Clone, PartialEq, Eq)]
pub struct ObjectStore {
    /// The bucket of the data path (for messages).
    pub bucket: String,
    /// `host[:port]` of an S3-compatible store; `None`: AWS S3 itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub url_style: UrlStyle,
    pub use_ssl: bool,
    /// Secrets: never printed.
    pub key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
    /// Where the credentials came from: a file key or an environment variable (for messages).
    pub credentials_from: &'static str,
}

impl ObjectStore {
    /// The endpoint as messages name it.
    pub fn endpoint_name(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{}://{e}", if self.use_ssl { "https" } else { "http" }),
            None => format!("AWS S3 ({})", self.region),
        }
    }
}

impl fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStore")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("url_style", &self.url_style)
            .field("use_ssl", &self.use_ssl)
            .field("key_id", &"[redacted]")
            .field("secret", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .field("credentials_from", &self.credentials_from)
            .finish()
    }
}

/// The `ducklake.s3.*` values of a connector file, as written (absent keys are `None`).
#[derive(Debug, Default, Clone)]
pub(super) struct S3Keys {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub url_style: Option<String>,
    pub use_ssl: Option<String>,
    pub key_id: Option<String>,
    pub secret: Option<String>,
    pub session_token: Option<String>,
}

impl S3Keys {
    fn any(&self) -> Option<&'static str> {
        [
            (ENDPOINT, &self.endpoint),
            (REGION, &self.region),
            (URL_STYLE, &self.url_style),
            (USE_SSL, &self.use_ssl),
            (KEY_ID, &self.key_id),
            (SECRET, &self.secret),
            (SESSION_TOKEN, &self.session_token),
        ]
        .into_iter()
        .find_map(|(k, v)| v.is_some().then_some(k))
    }
}

/// The object store of `data_path`, from the file's keys and then `env` (the AWS variables);
/// `None` for a local data path. Errors name the file and the key (or variable) to fix.
pub(super) fn resolve(
    file: &Path,
    data_path: &str,
    keys: &S3Keys,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ObjectStore>, ConfigError> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let Some((scheme, rest)) = data_path.split_once("://") else {
        if let Some(key) = keys.any() {
            return Err(key_err(
                file,
                key,
                &format!("applies to an s3:// data path, but ducklake.data.path is the local folder `{data_path}`"),
            ));
        }
        return Ok(None);
    };
    if scheme != "s3" {
        return Err(key_err(
            file,
            DATA_PATH,
            &format!("`{scheme}://` is not supported: use a local folder or an s3://bucket/prefix/ URL (S3-compatible stores such as MinIO, Ceph or R2 through ducklake.s3.endpoint)"),
        ));
    }
    let bucket = rest.split('/').next().unwrap_or("");
    if bucket.is_empty() {
        return Err(key_err(
            file,
            DATA_PATH,
            &format!("`{data_path}` names no bucket: expected s3://bucket/prefix/"),
        ));
    }

    let (endpoint, endpoint_key, scheme_ssl) = match keys.endpoint.as_deref() {
        Some(value) => {
            let (host, ssl) = parse_endpoint(value).map_err(|m| key_err(file, ENDPOINT, &m))?;
            (Some(host), ENDPOINT, ssl)
        }
        None => match env("AWS_ENDPOINT_URL_S3")
            .map(|v| (v, "AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL").map(|v| (v, "AWS_ENDPOINT_URL")))
        {
            Some((value, var)) => {
                let (host, ssl) = parse_endpoint(&value).map_err(|m| {
                    key_err(
                        file,
                        ENDPOINT,
                        &format!("not set, and the environment variable {var}: {m}"),
                    )
                })?;
                (Some(host), var, ssl)
            }
            None => (None, ENDPOINT, None),
        },
    };
    let use_ssl = match keys
        .use_ssl
        .as_deref()
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => scheme_ssl.unwrap_or(true),
        Some(v) => {
            let ssl = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(key_err(
                        file,
                        USE_SSL,
                        &format!("expected true or false, got `{v}`"),
                    ))
                }
            };
            if scheme_ssl.is_some_and(|s| s != ssl) {
                return Err(key_err(
                    file,
                    USE_SSL,
                    &format!("`{v}` contradicts the scheme of {endpoint_key}; drop one of them"),
                ));
            }
            ssl
        }
    };
    let url_style = match keys.url_style.as_deref().map(str::trim) {
        None if endpoint.is_some() => UrlStyle::Path,
        None => UrlStyle::Vhost,
        Some("path") => UrlStyle::Path,
        Some("vhost") => UrlStyle::Vhost,
        Some(other) => {
            return Err(key_err(
                file,
                URL_STYLE,
                &format!("expected vhost or path, got `{other}`"),
            ))
        }
    };
    let region = match &keys.region {
        Some(r) if r.trim().is_empty() => {
            return Err(key_err(file, REGION, "must not be empty"));
        }
        Some(r) => r.trim().to_owned(),
        None => env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
    };

    let (key_id, secret, session_token, credentials_from) = match (&keys.key_id, &keys.secret) {
        (Some(id), Some(secret)) => {
            for (key, value) in [(KEY_ID, id), (SECRET, secret)] {
                if value.trim().is_empty() {
                    return Err(key_err(file, key, "must not be empty"));
                }
            }
            (
                id.clone(),
                secret.clone(),
                keys.session_token.clone(),
                KEY_ID,
            )
        }
        (Some(_), None) => {
            return Err(key_err(
                file,
                SECRET,
                &format!("missing: {KEY_ID} is set, and the secret must come from the file too"),
            ))
        }
        (None, Some(_)) => {
            return Err(key_err(
                file,
                KEY_ID,
                &format!("missing: {SECRET} is set, and the key id must come from the file too"),
            ))
        }
        (None, None) => {
            if keys.session_token.is_some() {
                return Err(key_err(
                    file,
                    SESSION_TOKEN,
                    &format!("needs {KEY_ID} and {SECRET} in the file"),
                ));
            }
            match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                    (Some(id), Some(secret)) => {
                        (id, secret, env("AWS_SESSION_TOKEN"), "AWS_ACCESS_KEY_ID")
                    }
                    (Some(_), None) => return Err(key_err(
                        file,
                        DATA_PATH,
                        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both, or ducklake.s3.access.key.id and ducklake.s3.secret.access.key",
                    )),
                    (None, Some(_)) => return Err(key_err(
                        file,
                        DATA_PATH,
                        "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both, or ducklake.s3.access.key.id and ducklake.s3.secret.access.key",
                    )),
                    (None, None) => return Err(key_err(
                        file,
                        DATA_PATH,
                        &format!("`{data_path}` needs credentials: set ducklake.s3.access.key.id and ducklake.s3.secret.access.key, or the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
                    )),
                }
        }
    };
    for secret in [Some(&key_id), Some(&secret), session_token.as_ref()]
        .into_iter()
        .flatten()
    {
        super::register_secret(secret);
    }
    Ok(Some(ObjectStore {
        bucket: bucket.to_owned(),
        endpoint,
        region,
        url_style,
        use_ssl,
        key_id,
        secret,
        session_token,
        credentials_from,
    }))
}

/// `host[:port]`, optionally with an `http://` / `https://` scheme (which then decides SSL);
/// no path, query or credentials.
fn parse_endpoint(value: &str) -> Result<(String, Option<bool>), String> {
    let value = value.trim();
    let (rest, ssl) = if let Some(rest) = value.strip_prefix("https://") {
        (rest, Some(true))
    } else if let Some(rest) = value.strip_prefix("http://") {
        (rest, Some(false))
    } else if value.contains("://") {
        return Err(format!(
            "`{value}`: expected host:port or an http:// or https:// URL"
        ));
    } else {
        (value, None)
    };
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() {
        return Err(format!("`{value}` names no host"));
    }
    if host.contains(['/', '?', '#', '@']) || host.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{value}`: expected host:port, without a path, query or credentials"
        ));
    }
    Ok((host.to_owned(), ssl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn resolve_with(
        data_path: &str,
        keys: &S3Keys,
        vars: &[(&str, &str)],
    ) -> Result<Option<ObjectStore>, String> {
        resolve(Path::new("c.json"), data_path, keys, &env_of(vars)).map_err(|e| e.to_string())
    }

    fn file_keys() -> S3Keys {
        S3Keys {
            key_id: Some("AKIAFILE".into()),
            secret: Some("fileSecret".into()),
            ..S3Keys::default()
        }
    }

    #[test]
    fn local_paths_need_no_store_and_refuse_s3_keys() {
        assert_eq!(resolve_with("data/", &S3Keys::default(), &[]), Ok(None));
        let e = resolve_with("data/", &file_keys(), &[]).unwrap_err();
        assert!(e.contains("c.json: key `ducklake.s3.access.key.id`"), "{e}");
        assert!(e.contains("local folder `data/`"), "{e}");
    }

    #[test]
    fn file_keys_win_and_an_endpoint_url_sets_ssl_and_path_style() {
        let keys = S3Keys {
            endpoint: Some("http://127.0.0.1:9000/".into()),
            region: Some("eu-west-1".into()),
            ..file_keys()
        };
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "envSecret"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_ENDPOINT_URL", "https://elsewhere:443"),
        ];
        let s = resolve_with("s3://lake/prefix/", &keys, &env)
            .unwrap()
            .unwrap();
        assert_eq!(s.bucket, "lake");
        assert_eq!(s.endpoint.as_deref(), Some("127.0.0.1:9000"));
        assert!(!s.use_ssl);
        assert_eq!(s.url_style, UrlStyle::Path);
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(
            (s.key_id.as_str(), s.secret.as_str()),
            ("AKIAFILE", "fileSecret")
        );
        assert_eq!(s.endpoint_name(), "http://127.0.0.1:9000");
    }

    #[test]
    fn the_environment_fills_what_the_file_leaves_out() {
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "envSecret"),
            ("AWS_SESSION_TOKEN", "envToken"),
            ("AWS_DEFAULT_REGION", "ap-south-1"),
            ("AWS_ENDPOINT_URL", "https://minio.example:9000"),
            ("AWS_ENDPOINT_URL_S3", "minio-s3.example:9000"),
        ];
        let s = resolve_with("s3://b", &S3Keys::default(), &env)
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("minio-s3.example:9000"));
        assert!(s.use_ssl);
        assert_eq!(s.region, "ap-south-1");
        assert_eq!(s.key_id, "AKIAENV");
        assert_eq!(s.session_token.as_deref(), Some("envToken"));
        assert_eq!(s.credentials_from, "AWS_ACCESS_KEY_ID");
        // AWS itself: virtual-hosted style, SSL, the default region.
        let s = resolve_with(
            "s3://b/p/",
            &S3Keys::default(),
            &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint, None);
        assert_eq!(s.url_style, UrlStyle::Vhost);
        assert!(s.use_ssl);
        assert_eq!(s.region, DEFAULT_REGION);
        assert_eq!(s.endpoint_name(), "AWS S3 (us-east-1)");
    }

    #[test]
    fn credentials_come_as_a_pair_from_one_place() {
        let only_id = S3Keys {
            key_id: Some("AKIAFILE".into()),
            ..S3Keys::default()
        };
        let env = [("AWS_SECRET_ACCESS_KEY", "envSecret")];
        let e = resolve_with("s3://b/", &only_id, &env).unwrap_err();
        assert!(
            e.contains("key `ducklake.s3.secret.access.key`: missing"),
            "{e}"
        );
        let e = resolve_with("s3://b/", &S3Keys::default(), &env).unwrap_err();
        assert!(
            e.contains("AWS_ACCESS_KEY_ID is set") || e.contains("AWS_ACCESS_KEY_ID is not"),
            "{e}"
        );
        let e = resolve_with("s3://b/", &S3Keys::default(), &[]).unwrap_err();
        assert!(e.contains("key `ducklake.data.path`"), "{e}");
        assert!(
            e.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            "{e}"
        );
        let token_only = S3Keys {
            session_token: Some("t".into()),
            ..S3Keys::default()
        };
        let e = resolve_with("s3://b/", &token_only, &[]).unwrap_err();
        assert!(e.contains("key `ducklake.s3.session.token`"), "{e}");
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let cases: [(S3Keys, &str, &str); 7] = [
            (
                S3Keys {
                    url_style: Some("virtual".into()),
                    ..file_keys()
                },
                "s3://b/",
                "key `ducklake.s3.url.style`: expected vhost or path",
            ),
            (
                S3Keys {
                    use_ssl: Some("yes".into()),
                    ..file_keys()
                },
                "s3://b/",
                "key `ducklake.s3.use.ssl`: expected true or false",
            ),
            (
                S3Keys {
                    endpoint: Some("https://h:9000".into()),
                    use_ssl: Some("false".into()),
                    ..file_keys()
                },
                "s3://b/",
                "key `ducklake.s3.use.ssl`: `false` contradicts",
            ),
            (
                S3Keys {
                    endpoint: Some("http://h:9000/bucket".into()),
                    ..file_keys()
                },
                "s3://b/",
                "key `ducklake.s3.endpoint`: `http://h:9000/bucket`: expected host:port",
            ),
            (
                S3Keys {
                    endpoint: Some("ftp://h".into()),
                    ..file_keys()
                },
                "s3://b/",
                "key `ducklake.s3.endpoint`",
            ),
            (
                file_keys(),
                "s3:///prefix/",
                "key `ducklake.data.path`: `s3:///prefix/` names no bucket",
            ),
            (
                file_keys(),
                "gs://b/",
                "key `ducklake.data.path`: `gs://` is not supported",
            ),
        ];
        for (keys, path, expected) in cases {
            let e = resolve_with(path, &keys, &[]).unwrap_err();
            assert!(e.contains(expected), "{e}");
        }
    }

    #[test]
    fn every_key_is_known_to_the_parser() {
        for key in KEYS {
            assert!(super::super::KNOWN_KEYS.contains(key), "{key}");
        }
    }

    #[test]
    fn a_bad_endpoint_variable_is_named() {
        let e = resolve_with(
            "s3://b/",
            &file_keys(),
            &[("AWS_ENDPOINT_URL", "http://h/x")],
        )
        .unwrap_err();
        assert!(e.contains("key `ducklake.s3.endpoint`: not set, and the environment variable AWS_ENDPOINT_URL"), "{e}");
    }

    #[test]
    fn debug_output_hides_the_credentials() {
        let s = resolve_with(
            "s3://b/",
            &S3Keys {
                session_token: Some("tokenXYZ".into()),
                ..file_keys()
            },
            &[],
        )
        .unwrap()
        .unwrap();
        let text = format!("{s:?}");
        for secret in ["AKIAFILE", "fileSecret", "tokenXYZ"] {
            assert!(!text.contains(secret), "{text}");
        }
        // And they are scrubbed from library error text from now on.
        assert_eq!(
            super::super::scrub_secrets("signature for fileSecret by AKIAFILE"),
            "signature for [redacted] by [redacted]"
        );
    }
}
