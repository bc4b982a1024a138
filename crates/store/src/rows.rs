//! One statement for a whole batch: a batch's rows as a `VALUES` list
//! with typed binds, which an `UPDATE … FROM`, an `INSERT … SELECT` or a
//! join reads. A batch of 500 progress records is then two statements,
//! not a thousand: on PostgreSQL each statement is a round trip, and on
//! SQLite each is a step through the writer's transaction. The SQL is
//! written once for both backends; each bind's placeholder is `$N` on
//! PostgreSQL and `?` on SQLite (which would look every `$N` up in the
//! list of names before it: quadratic in a batch's binds).

use crate::door::{db_error, Conn};
use diesel::backend::Backend;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text};
use nephele_common::Result;

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<String> for Bind {
    fn from(v: String) -> Bind {
        Bind::Text(Some(v))
    }
}

impl From<&str> for Bind {
    fn from(v: &str) -> Bind {
        Bind::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for Bind {
    fn from(v: Option<String>) -> Bind {
        Bind::Text(v)
    }
}

impl From<i64> for Bind {
    fn from(v: i64) -> Bind {
        Bind::Int(Some(v))
    }
}

impl From<Option<i64>> for Bind {
    fn from(v: Option<i64>) -> Bind {
        Bind::Int(v)
    }
}

/// SQLite allows 32,766 binds in a statement, PostgreSQL 65,535: a batch
/// whose rows would bind more is split.
const MOST_BINDS: usize = 30_000;

/// A statement being written, with its binds.
#[derive(Debug, Default)]
pub struct Statement {
    sql: String,
    /// Where in `sql` each bind's placeholder goes.
    holes: Vec<usize>,
    binds: Vec<Bind>,
}

impl Statement {
    /// `WITH name(columns…) AS (VALUES (…), …) `, to be followed by the
    /// statement that reads `name`. Every row has one value per column.
    pub fn with_rows(name: &str, columns: &[&str], rows: Vec<Vec<Bind>>) -> Statement {
        let mut s = Statement::default();
        s.sql.push_str("WITH ");
        s.sql.push_str(name);
        s.sql.push('(');
        s.sql.push_str(&columns.join(", "));
        s.sql.push_str(") AS (VALUES ");
        for (i, row) in rows.into_iter().enumerate() {
            debug_assert_eq!(row.len(), columns.len());
            if i > 0 {
                s.sql.push_str(", ");
            }
            s.sql.push('(');
            for (j, value) in row.into_iter().enumerate() {
                if j > 0 {
                    s.sql.push_str(", ");
                }
                s.bind(value);
            }
            s.sql.push(')');
        }
        s.sql.push_str(") ");
        s
    }

    /// Appends SQL text.
    pub fn sql(mut self, sql: &str) -> Statement {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `value`.
    fn bind(&mut self, value: Bind) {
        self.binds.push(value);
        self.holes.push(self.sql.len());
    }

    /// The SQL with its placeholders, `$N` (PostgreSQL) or `?` (SQLite).
    fn text(&self, numbered: bool) -> String {
        let mut text = String::with_capacity(self.sql.len() + 6 * self.holes.len());
        let mut from = 0;
        for (i, &hole) in self.holes.iter().enumerate() {
            text.push_str(&self.sql[from..hole]);
            if numbered {
                text.push('$');
                text.push_str(&(i + 1).to_string());
            } else {
                text.push('?');
            }
            from = hole;
        }
        text.push_str(&self.sql[from..]);
        text
    }

    fn boxed<DB>(self, numbered: bool) -> BoxedSqlQuery<'static, DB, SqlQuery>
    where
        DB: Backend + HasSqlType<Text> + HasSqlType<BigInt>,
        Option<String>: ToSql<Nullable<Text>, DB>,
        Option<i64>: ToSql<Nullable<BigInt>, DB>,
    {
        let mut query = diesel::sql_query(self.text(numbered)).into_boxed::<DB>();
        for value in self.binds {
            query = match value {
                Bind::Text(v) => query.bind::<Nullable<Text>, _>(v),
                Bind::Int(v) => query.bind::<Nullable<BigInt>, _>(v),
            };
        }
        query
    }

    /// Runs it; how many rows it changed.
    pub async fn execute(self, c: &mut Conn) -> Result<usize> {
        match c {
            Conn::Sqlite(c) => diesel::RunQueryDsl::execute(self.boxed(false), c),
            Conn::Pg(c) => diesel_async::RunQueryDsl::execute(self.boxed(true), &mut **c).await,
        }
        .map_err(db_error)
    }

    /// Runs it; the rows it answered (by column name).
    pub async fn load<U>(self, c: &mut Conn) -> Result<Vec<U>>
    where
        U: diesel::QueryableByName<diesel::sqlite::Sqlite>
            + diesel::QueryableByName<diesel::pg::Pg>
            + Send
            + 'static,
    {
        match c {
            Conn::Sqlite(c) => diesel::RunQueryDsl::load(self.boxed(false), c),
            Conn::Pg(c) => diesel_async::RunQueryDsl::load(self.boxed(true), &mut **c).await,
        }
        .map_err(db_error)
    }
}

/// `rows` in chunks that each stay under the bind limit, for a statement
/// per chunk.
pub fn chunks(rows: Vec<Vec<Bind>>) -> Vec<Vec<Vec<Bind>>> {
    let width = rows.first().map_or(1, Vec::len).max(1);
    let per = (MOST_BINDS / width).max(1);
    let mut out = Vec::with_capacity(rows.len() / per + 1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        out.push(rows.by_ref().take(per).collect());
    }
    out
}

/// One id column of a statement's answer.
#[derive(diesel::QueryableByName)]
pub struct Id {
    #[diesel(sql_type = Text)]
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let s = Statement::with_rows(
            "v",
            &["a", "b"],
            vec![
                vec![1.into(), "x".into()],
                vec![2.into(), None::<String>.into()],
            ],
        )
        .sql("SELECT a FROM v");
        assert_eq!(
            s.text(true),
            "WITH v(a, b) AS (VALUES ($1, $2), ($3, $4)) SELECT a FROM v"
        );
        assert_eq!(
            s.text(false),
            "WITH v(a, b) AS (VALUES (?, ?), (?, ?)) SELECT a FROM v"
        );
        assert_eq!(s.binds.len(), 4);
    }

    #[test]
    fn a_batch_past_the_bind_limit_is_split() {
        let rows = vec![vec![Bind::Int(Some(1)); 3]; MOST_BINDS];
        let chunks = chunks(rows);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.len() * 3 <= MOST_BINDS));
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), MOST_BINDS);
    }
}
