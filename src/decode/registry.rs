//! The schema registry, through its documented Confluent API only (`GET /schemas/ids/{id}`,
//! references by subject and version), so Confluent's, Redpanda's and Apicurio's compatible
//! endpoints all serve. Each schema id is fetched once: the decoder keeps what it gets.

use std::sync::Arc;
use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::{
    get_referenced_schema, get_schema_by_id, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::RegisteredSchema;

use super::avro::AvroSchema;
use crate::config::RegistryConfig;

/// What went wrong fetching a schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered that the id does not exist: the record is bad.
    #[error("schema id {id} is not in the schema registry ({urls})")]
    NotFound { id: u32, urls: String },
    /// Unreachable, or a 5xx: worth trying again.
    #[error("schema registry {urls} unavailable: {message}")]
    Unavailable { urls: String, message: String },
    /// Anything else (refused credentials, a schema that does not parse): stop.
    #[error("schema registry {urls}: schema id {id}: {message}")]
    Failed {
        urls: String,
        id: u32,
        message: String,
    },
}

impl RegistryError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A converter's registry client.
pub struct Registry {
    settings: SrSettings,
    urls: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("urls", &self.urls)
            .finish()
    }
}

impl Registry {
    pub fn new(config: &RegistryConfig) -> Result<Self, String> {
        let (first, rest) = config.urls.split_first().ok_or("no schema registry URL")?;
        let mut builder = SrSettings::new_builder(first.clone());
        for url in rest {
            builder.add_url(url.clone());
        }
        if let Some(info) = &config.user_info {
            let (user, password) = info.split_once(':').unwrap_or((info.as_str(), ""));
            builder.set_basic_authorization(user, Some(password));
        }
        builder.set_timeout(Duration::from_secs(10));
        let settings = builder.build().map_err(|e| e.error)?;
        Ok(Self {
            settings,
            urls: config.urls.join(","),
        })
    }

    /// The writer schema with id `id`, its references resolved.
    pub async fn fetch(&self, id: u32) -> Result<Arc<AvroSchema>, RegistryError> {
        let registered = get_schema_by_id(id, &self.settings)
            .await
            .map_err(|e| self.classify(id, &e))?;
        let mut references = Vec::new();
        self.references(id, &registered, &mut references, 0).await?;
        AvroSchema::parse(&registered.schema, &references)
            .map(Arc::new)
            .map_err(|message| RegistryError::Failed {
                urls: self.urls.clone(),
                id,
                message: format!("not an Avro schema the sink can read: {message}"),
            })
    }

    /// The schemas `schema` references, each after its own references.
    async fn references(
        &self,
        id: u32,
        schema: &RegisteredSchema,
        out: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), RegistryError> {
        if depth > 32 {
            return Err(RegistryError::Failed {
                urls: self.urls.clone(),
                id,
                message: "schema references nest deeper than 32".into(),
            });
        }
        for r in &schema.references {
            let referenced = get_referenced_schema(&self.settings, r)
                .await
                .map_err(|e| self.classify(id, &e))?;
            Box::pin(self.references(id, &referenced, out, depth + 1)).await?;
            if !out.contains(&referenced.schema) {
                out.push(referenced.schema);
            }
        }
        Ok(())
    }

    fn classify(&self, id: u32, e: &SRCError) -> RegistryError {
        let text = e.to_string();
        if text.contains("status 404") {
            RegistryError::NotFound {
                id,
                urls: self.urls.clone(),
            }
        } else if e.retriable || text.contains("status 5") {
            RegistryError::Unavailable {
                urls: self.urls.clone(),
                message: text,
            }
        } else {
            RegistryError::Failed {
                urls: self.urls.clone(),
                id,
                message: text,
            }
        }
    }
}
