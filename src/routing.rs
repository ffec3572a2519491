//! Which table a record goes to: `table.name.format` with `${topic}` and the Debezium JDBC
//! sink's `${source.db}`, `${source.schema}` and `${source.table}`.
//!
//! Records without a `source` block (tombstones, plain JSON) take the table their topic last
//! went to, or, before any, the placeholders filled from the topic name as Debezium builds it
//! (`prefix.db.table` for MySQL, `prefix.schema.table` for PostgreSQL). The result is a name,
//! quoted wherever SQL is written; it can never inject SQL.

use crate::decode::SourceInfo;

/// The placeholders `table.name.format` understands.
pub const PLACEHOLDERS: &[&str] = &["topic", "source.db", "source.schema", "source.table"];

/// The placeholders of `format` that [`PLACEHOLDERS`] does not know, for config checks.
pub fn unknown_placeholders(format: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = format;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            unknown.push(after.to_owned());
            break;
        };
        let name = &after[..end];
        if !PLACEHOLDERS.contains(&name) {
            unknown.push(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    unknown
}

#[derive(Debug)]
pub struct Routes {
    format: String,
    uses_source: bool,
    /// The table each topic went to last.
    by_topic: crate::FastMap<String, String>,
    /// The topic and source names of the last record rendered: change events of one table
    /// repeat them, and rendering allocates.
    last: Option<(String, SourceNames)>,
}

type SourceNames = (Option<String>, Option<String>, Option<String>);

fn same_names(names: &SourceNames, source: &SourceInfo) -> bool {
    names.0 == source.db && names.1 == source.schema && names.2 == source.table
}

impl Routes {
    pub fn new(format: &str) -> Self {
        Self {
            format: format.to_owned(),
            uses_source: format.contains("${source."),
            by_topic: crate::FastMap::default(),
            last: None,
        }
    }

    /// The table of a record of `topic` with Debezium `source` info.
    pub fn table(&mut self, topic: &str, source: Option<&SourceInfo>) -> &str {
        match source.filter(|_| self.uses_source) {
            Some(source) => {
                let repeated = self
                    .last
                    .as_ref()
                    .is_some_and(|(t, names)| t == topic && same_names(names, source));
                if repeated {
                    return self.by_topic.get(topic).map_or("", String::as_str);
                }
                self.last = Some((
                    topic.to_owned(),
                    (
                        source.db.clone(),
                        source.schema.clone(),
                        source.table.clone(),
                    ),
                ));
                let table = render(&self.format, topic, Some(source));
                match self.by_topic.get_mut(topic) {
                    Some(known) if *known == table => {}
                    Some(known) => *known = table,
                    None => {
                        self.by_topic.insert(topic.to_owned(), table);
                    }
                }
            }
            None => {
                if !self.by_topic.contains_key(topic) {
                    let table = render(&self.format, topic, None);
                    self.by_topic.insert(topic.to_owned(), table);
                }
            }
        }
        self.by_topic.get(topic).map_or("", String::as_str)
    }
}

fn render(format: &str, topic: &str, source: Option<&SourceInfo>) -> String {
    let segments: Vec<&str> = topic.split('.').collect();
    let from_topic_table = segments.last().copied().unwrap_or(topic);
    let from_topic_ns = if segments.len() >= 3 {
        segments[segments.len() - 2]
    } else {
        ""
    };
    let db = source
        .and_then(|s| s.db.as_deref())
        .unwrap_or(from_topic_ns);
    let schema = source
        .and_then(|s| s.schema.as_deref())
        .unwrap_or(from_topic_ns);
    let table = source
        .and_then(|s| s.table.as_deref())
        .unwrap_or(from_topic_table);
    format
        .replace("${topic}", topic)
        .replace("${source.db}", db)
        .replace("${source.schema}", schema)
        .replace("${source.table}", table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(db: Option<&str>, schema: Option<&str>, table: &str) -> SourceInfo {
        SourceInfo {
            db: db.map(str::to_owned),
            schema: schema.map(str::to_owned),
            table: Some(table.to_owned()),
            ..SourceInfo::default()
        }
    }

    #[test]
    fn topic_and_source_placeholders() {
        let mut r = Routes::new("${topic}");
        assert_eq!(r.table("orders", None), "orders");
        let mut r = Routes::new("${source.db}_${source.table}");
        let s = source(Some("inventory"), None, "users");
        assert_eq!(
            r.table("dbserver1.inventory.users", Some(&s)),
            "inventory_users"
        );
        let mut r = Routes::new("cdc_${source.schema}_${source.table}");
        let s = source(Some("postgres"), Some("public"), "items");
        assert_eq!(r.table("pg.public.items", Some(&s)), "cdc_public_items");
    }

    #[test]
    fn records_without_source_follow_their_topic() {
        let mut r = Routes::new("${source.table}");
        // Before any record with a source: from the topic name.
        assert_eq!(r.table("dbserver1.inventory.users", None), "users");
        let s = source(Some("inventory"), None, "Users");
        assert_eq!(r.table("dbserver1.inventory.users", Some(&s)), "Users");
        // A tombstone afterwards goes where its topic went.
        assert_eq!(r.table("dbserver1.inventory.users", None), "Users");
    }

    #[test]
    fn hostile_names_stay_names_and_unknown_placeholders_are_found() {
        let mut r = Routes::new("${source.table}");
        let s = source(None, None, "x\"; DROP TABLE t; --");
        assert_eq!(r.table("t", Some(&s)), "x\"; DROP TABLE t; --");
        assert_eq!(
            unknown_placeholders("${topic}_${source.table}"),
            Vec::<String>::new()
        );
        assert_eq!(
            unknown_placeholders("${topik}_${source.tbl}"),
            vec!["topik", "source.tbl"]
        );
        assert_eq!(unknown_placeholders("x_${topic"), vec!["topic"]);
    }

    /// One topic carrying changes of several tables (a topic routed by `source`), records
    /// alternating between them and with another topic: each goes to its own table.
    #[test]
    fn alternating_sources_each_find_their_table() {
        let mut r = Routes::new("${source.db}_${source.table}");
        let a = source(Some("shop"), None, "orders");
        let b = source(Some("shop"), None, "items");
        let c = source(Some("crm"), None, "orders");
        for _ in 0..2 {
            assert_eq!(r.table("all", Some(&a)), "shop_orders");
            assert_eq!(r.table("all", Some(&a)), "shop_orders");
            assert_eq!(r.table("all", Some(&b)), "shop_items");
            assert_eq!(r.table("other", Some(&c)), "crm_orders");
            assert_eq!(r.table("all", Some(&c)), "crm_orders");
            assert_eq!(r.table("all", None), "crm_orders");
        }
    }
}
