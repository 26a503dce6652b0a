//! The table a PartiQL statement names: what ExecuteStatement and BatchExecuteStatement record
//! (the statement itself is never recorded: it may hold literal values).

/// `SELECT * FROM "orders"."by_date" WHERE ...` → `orders`; `INSERT INTO orders VALUE {...}` →
/// `orders`; `UPDATE "orders" SET ...`, `DELETE FROM orders WHERE ...` → `orders`.
pub(crate) fn table_of_statement(statement: &str) -> Option<String> {
    let mut words = Tokens { rest: statement };
    let first = words.next_word()?;
    let keyword = if first.eq_ignore_ascii_case("UPDATE") {
        "UPDATE"
    } else if first.eq_ignore_ascii_case("INSERT") {
        "INTO"
    } else {
        "FROM"
    };
    if keyword != "UPDATE" {
        loop {
            let word = words.next_word()?;
            if word.eq_ignore_ascii_case(keyword) {
                break;
            }
        }
    }
    words.identifier()
}

struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    /// The next bare word; skips over quoted strings and identifiers (which may hold the
    /// keywords as text).
    fn next_word(&mut self) -> Option<&'a str> {
        loop {
            self.rest = self.rest.trim_start();
            let c = self.rest.chars().next()?;
            if c == '\'' || c == '"' {
                let end = self.rest[1..].find(c)? + 2;
                self.rest = &self.rest[end..];
                continue;
            }
            if c.is_alphanumeric() || c == '_' {
                let end = self
                    .rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(self.rest.len());
                let word = &self.rest[..end];
                self.rest = &self.rest[end..];
                return Some(word);
            }
            self.rest = &self.rest[c.len_utf8()..];
        }
    }

    /// A table identifier, quoted (`"orders"`) or bare (`orders`).
    fn identifier(&mut self) -> Option<String> {
        self.rest = self.rest.trim_start();
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            return Some(quoted[..end].to_owned()).filter(|t| !t.is_empty());
        }
        let end = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || "_.-".contains(c)))
            .unwrap_or(self.rest.len());
        let name = self.rest[..end].split('.').next()?;
        (!name.is_empty()).then(|| name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::table_of_statement as t;

    #[test]
    fn statements() {
        assert_eq!(
            t(r#"SELECT * FROM "orders" WHERE id = ?"#).as_deref(),
            Some("orders")
        );
        assert_eq!(
            t(r#"select a, "from" FROM "orders"."by_date""#).as_deref(),
            Some("orders")
        );
        assert_eq!(
            t("SELECT * FROM orders.by_date WHERE x = 'FROM y'").as_deref(),
            Some("orders")
        );
        assert_eq!(
            t(r#"INSERT INTO "orders" VALUE {'id': 'secret'}"#).as_deref(),
            Some("orders")
        );
        assert_eq!(
            t(r#"UPDATE "orders" SET a = 1 WHERE id = 'k'"#).as_deref(),
            Some("orders")
        );
        assert_eq!(
            t("DELETE FROM orders WHERE id = 'k'").as_deref(),
            Some("orders")
        );
        assert_eq!(t("EXISTS(SELECT * FROM orders)").as_deref(), Some("orders"));
        assert_eq!(t("garbage"), None);
        assert_eq!(t(""), None);
        assert_eq!(t(r#"SELECT * FROM ""#), None);
    }
}
