//! API tokens and integration keys. Only hashes are stored; the secret is shown once at creation.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use reveille_store::backend::{CredentialReads, CredentialWrites};
use reveille_store::{Error, KeyInfo, Result, TokenInfo};

use crate::Reader;
use crate::session::Session;

fn time(text: String) -> rusqlite::Result<Timestamp> {
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn token_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    let scopes: String = row.get("scopes")?;
    Ok(TokenInfo {
        prefix: row.get("prefix")?,
        user: row.get("user")?,
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        created_at: time(row.get("created_at")?)?,
        last_used_at: row.get::<_, Option<String>>("last_used_at")?.map(time).transpose()?,
        revoked: row.get("revoked")?,
    })
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<KeyInfo> {
    Ok(KeyInfo {
        prefix: row.get("prefix")?,
        service: row.get("service")?,
        created_at: time(row.get("created_at")?)?,
        revoked: row.get("revoked")?,
    })
}

/// Finds the one row of `table` whose prefix starts with `prefix`, and marks it revoked.
fn revoke<T>(
    conn: &Connection,
    table: &str,
    prefix: &str,
    map: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<T> {
    if prefix.is_empty() {
        return Err(Error::Refused("give the prefix of the entry to revoke".into()));
    }
    let matches = "substr(prefix, 1, length(?1)) = ?1";
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} WHERE {matches}"))?;
    let mut found = stmt.query_map([prefix], map)?.collect::<Result<Vec<_>, _>>()?;
    if found.len() > 1 {
        return Err(Error::Refused(format!("prefix {prefix} matches {} entries", found.len())));
    }
    let item = found.pop().ok_or_else(|| Error::NotFound(format!("{prefix}…")))?;
    conn.execute(&format!("UPDATE {table} SET revoked = 1 WHERE {matches}"), [prefix])?;
    Ok(item)
}

impl CredentialWrites for Session {
    fn add_token(&mut self, hash: &str, t: &TokenInfo) -> Result<()> {
        let conn = &self.conn;
        conn.execute(
            "INSERT INTO tokens (hash, prefix, user, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash, t.prefix, t.user, t.scopes.join(","), t.created_at.to_string()],
        )?;
        Ok(())
    }

    fn touch_token(&mut self, hash: &str, now: Timestamp) -> Result<()> {
        let conn = &self.conn;
        conn.prepare_cached("UPDATE tokens SET last_used_at = ?2 WHERE hash = ?1")?
            .execute(params![hash, now.to_string()])?;
        Ok(())
    }

    fn revoke_token(&mut self, prefix: &str) -> Result<TokenInfo> {
        let conn = &self.conn;
        revoke(conn, "tokens", prefix, token_row).map(|t| TokenInfo { revoked: true, ..t })
    }

    fn add_key(&mut self, hash: &str, k: &KeyInfo) -> Result<()> {
        let conn = &self.conn;
        conn.execute(
            "INSERT INTO keys (hash, prefix, service, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash, k.prefix, k.service, k.created_at.to_string()],
        )?;
        Ok(())
    }

    fn revoke_key(&mut self, prefix: &str) -> Result<KeyInfo> {
        let conn = &self.conn;
        revoke(conn, "keys", prefix, key_row).map(|k| KeyInfo { revoked: true, ..k })
    }
}

impl CredentialReads for Reader {
    fn token(&mut self, hash: &str) -> Result<Option<TokenInfo>> {
        let conn = &self.0;
        Ok(conn
            .prepare_cached("SELECT * FROM tokens WHERE hash = ?1")?
            .query_row([hash], token_row)
            .optional()?)
    }

    fn tokens(&mut self) -> Result<Vec<TokenInfo>> {
        let conn = &self.0;
        let mut stmt = conn.prepare("SELECT * FROM tokens ORDER BY created_at, prefix")?;
        Ok(stmt.query_map([], token_row)?.collect::<Result<_, _>>()?)
    }

    fn key(&mut self, hash: &str) -> Result<Option<KeyInfo>> {
        let conn = &self.0;
        Ok(conn
            .prepare_cached("SELECT * FROM keys WHERE hash = ?1")?
            .query_row([hash], key_row)
            .optional()?)
    }

    fn keys(&mut self) -> Result<Vec<KeyInfo>> {
        let conn = &self.0;
        let mut stmt = conn.prepare("SELECT * FROM keys ORDER BY created_at, prefix")?;
        Ok(stmt.query_map([], key_row)?.collect::<Result<_, _>>()?)
    }
}
