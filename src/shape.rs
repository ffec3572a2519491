//! What a lake table looks like, and whether a record's column fits it: the one rule that
//! both the per-record check (so a misfit names its topic/partition/offset) and the lake's
//! DDL (create, add column, widen) follow.

use std::fmt;

use crate::decode::ColumnType;

/// Column names and types of a lake table as the catalog reports them (`None`: a type the
/// sink does not model; values are cast by DuckDB on write).
pub type TableColumns = Vec<(String, Option<ColumnType>)>;

/// `auto.create` and `auto.evolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evolution {
    pub auto_create: bool,
    pub auto_evolve: bool,
}

/// What writing a column of some type into a table takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// The column exists and holds the type (or the table will be created with it).
    Fits,
    /// The column exists under this name and DuckLake can widen it in place.
    Widen(String),
    /// The column does not exist yet and will be added.
    Add,
}

/// A record that cannot be written into its table under the connector's settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misfit {
    #[error(
        "table `{table}` does not exist and auto.create=false; create it or set auto.create=true"
    )]
    TableMissing { table: String },
    #[error("table `{table}` has no column `{column}` ({ty}) and auto.evolve=false; add it or set auto.evolve=true")]
    ColumnMissing {
        table: String,
        column: String,
        ty: ColumnType,
    },
    #[error("table `{table}`, column `{column}`: records carry {new} but the column is {old}, and DuckLake cannot change {old} to {new}{hint}")]
    TypeChange {
        table: String,
        column: String,
        old: String,
        new: ColumnType,
        hint: Hint,
    },
}

/// Why a type change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    NeedsAutoEvolve,
    NotAPromotion,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NeedsAutoEvolve => " without auto.evolve=true",
            Self::NotAPromotion => " (not an allowed promotion)",
        })
    }
}

/// Whether a column `name` of type `ty` can go into `table`, whose columns are `existing`
/// (`None`: the table does not exist).
pub fn fit(
    table: &str,
    existing: Option<&TableColumns>,
    name: &str,
    ty: &ColumnType,
    evolution: Evolution,
) -> Result<Fit, Misfit> {
    let Some(columns) = existing else {
        return if evolution.auto_create {
            Ok(Fit::Fits)
        } else {
            Err(Misfit::TableMissing {
                table: table.to_owned(),
            })
        };
    };
    // DuckDB identifiers are case-insensitive: `Name` and `name` are one column.
    match columns.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
        None if evolution.auto_evolve => Ok(Fit::Add),
        None => Err(Misfit::ColumnMissing {
            table: table.to_owned(),
            column: name.to_owned(),
            ty: ty.clone(),
        }),
        // A type the sink does not model: DuckDB casts on write.
        Some((_, None)) => Ok(Fit::Fits),
        Some((_, Some(old))) if ty.fits_into(old) => Ok(Fit::Fits),
        Some((col, Some(old))) if evolution.auto_evolve && old.promotes_to(ty) => {
            Ok(Fit::Widen(col.clone()))
        }
        Some((col, Some(old))) => Err(Misfit::TypeChange {
            table: table.to_owned(),
            column: col.clone(),
            old: old.sql(),
            new: ty.clone(),
            hint: if old.promotes_to(ty) {
                Hint::NeedsAutoEvolve
            } else {
                Hint::NotAPromotion
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVOLVE: Evolution = Evolution {
        auto_create: true,
        auto_evolve: true,
    };
    const STRICT: Evolution = Evolution {
        auto_create: false,
        auto_evolve: false,
    };

    fn cols() -> TableColumns {
        vec![
            ("ID".into(), Some(ColumnType::Integer)),
            ("geo".into(), None),
        ]
    }

    #[test]
    fn fits_widens_adds_or_refuses_naming_table_column_and_types() {
        let c = cols();
        assert_eq!(
            fit("t", Some(&c), "id", &ColumnType::SmallInt, STRICT),
            Ok(Fit::Fits)
        );
        assert_eq!(
            fit("t", Some(&c), "id", &ColumnType::BigInt, EVOLVE),
            Ok(Fit::Widen("ID".into()))
        );
        assert_eq!(
            fit("t", Some(&c), "geo", &ColumnType::Blob, STRICT),
            Ok(Fit::Fits)
        );
        assert_eq!(
            fit("t", Some(&c), "new", &ColumnType::Blob, EVOLVE),
            Ok(Fit::Add)
        );
        assert_eq!(
            fit("t", None, "new", &ColumnType::Blob, EVOLVE),
            Ok(Fit::Fits)
        );
        let e = fit("t", Some(&c), "id", &ColumnType::BigInt, STRICT).unwrap_err();
        assert_eq!(e.to_string(), "table `t`, column `ID`: records carry BIGINT but the column is INTEGER, and DuckLake cannot change INTEGER to BIGINT without auto.evolve=true");
        let e = fit("t", Some(&c), "id", &ColumnType::Varchar, EVOLVE).unwrap_err();
        assert!(e.to_string().ends_with("(not an allowed promotion)"), "{e}");
        assert!(matches!(
            fit("t", Some(&c), "x", &ColumnType::Blob, STRICT),
            Err(Misfit::ColumnMissing { .. })
        ));
        assert!(matches!(
            fit("t", None, "x", &ColumnType::Blob, STRICT),
            Err(Misfit::TableMissing { .. })
        ));
    }
}
