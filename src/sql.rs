//! The one place SQL text is assembled from names that came from outside (topics, fields,
//! config). Identifiers are always double-quoted, literals single-quoted, with the quote
//! character doubled, so no name can end the token it sits in.

/// `"name"` with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `'text'` with embedded quotes doubled.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `"catalog"."schema"."table"`.
pub fn qualified(catalog: &str, schema: &str, table: &str) -> String {
    format!("{}.{}.{}", ident(catalog), ident(schema), ident(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_whatever_they_contain() {
        assert_eq!(ident("orders"), r#""orders""#);
        assert_eq!(ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(ident("db.table"), r#""db.table""#);
        assert_eq!(ident("with space"), r#""with space""#);
        assert_eq!(ident("select"), r#""select""#);
        assert_eq!(ident("zoë_表"), "\"zoë_表\"");
        assert_eq!(
            ident(r#"x"; DROP TABLE t; --"#),
            r#""x""; DROP TABLE t; --""#
        );
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(qualified("lake", "main", "t"), r#""lake"."main"."t""#);
    }
}
