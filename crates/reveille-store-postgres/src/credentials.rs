//! API tokens and integration keys. Only hashes are stored; the secret is shown once at creation.

use jiff::Timestamp;
use postgres::Row;
use reveille_store::backend::{CredentialReads, CredentialWrites};
use reveille_store::{Error, KeyInfo, Result, TokenInfo};

use crate::Reader;
use crate::session::Session;

fn time(text: String) -> Result<Timestamp> {
    text.parse().map_err(|e| Error::Unavailable(format!("corrupt time {text:?}: {e}")))
}

fn token_row(row: &Row) -> Result<TokenInfo> {
    let scopes: String = row.get("scopes");
    Ok(TokenInfo {
        prefix: row.get("prefix"),
        user: row.get("user_name"),
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        created_at: time(row.get("created_at"))?,
        last_used_at: row.get::<_, Option<String>>("last_used_at").map(time).transpose()?,
        revoked: row.get("revoked"),
    })
}

fn key_row(row: &Row) -> Result<KeyInfo> {
    Ok(KeyInfo {
        prefix: row.get("prefix"),
        service: row.get("service"),
        created_at: time(row.get("created_at"))?,
        revoked: row.get("revoked"),
    })
}

/// The one row whose prefix starts with `prefix` (`select` finds the rows, `revoke` marks them).
fn revoke<T>(
    s: &mut Session,
    prefix: &str,
    select: &'static str,
    revoke: &'static str,
    map: fn(&Row) -> Result<T>,
) -> Result<T> {
    if prefix.is_empty() {
        return Err(Error::Refused("give the prefix of the entry to revoke".into()));
    }
    let mut found = s.query(select, &[&prefix])?.iter().map(map).collect::<Result<Vec<_>>>()?;
    if found.len() > 1 {
        return Err(Error::Refused(format!("prefix {prefix} matches {} entries", found.len())));
    }
    let item = found.pop().ok_or_else(|| Error::NotFound(format!("{prefix}…")))?;
    s.query(revoke, &[&prefix])?;
    Ok(item)
}

impl CredentialWrites for Session {
    fn add_token(&mut self, hash: &str, t: &TokenInfo) -> Result<()> {
        let s = self;
        s.query(
            "INSERT INTO tokens (hash, prefix, user_name, scopes, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&hash, &t.prefix, &t.user, &t.scopes.join(","), &t.created_at.to_string()],
        )?;
        Ok(())
    }

    fn touch_token(&mut self, hash: &str, now: Timestamp) -> Result<()> {
        let s = self;
        s.query("UPDATE tokens SET last_used_at = $2 WHERE hash = $1", &[&hash, &now.to_string()])?;
        Ok(())
    }

    fn revoke_token(&mut self, prefix: &str) -> Result<TokenInfo> {
        let s = self;
        revoke(
            s,
            prefix,
            "SELECT * FROM tokens WHERE starts_with(prefix, $1)",
            "UPDATE tokens SET revoked = TRUE WHERE starts_with(prefix, $1)",
            token_row,
        )
        .map(|t| TokenInfo { revoked: true, ..t })
    }

    fn add_key(&mut self, hash: &str, k: &KeyInfo) -> Result<()> {
        let s = self;
        s.query(
            "INSERT INTO keys (hash, prefix, service, created_at) VALUES ($1, $2, $3, $4)",
            &[&hash, &k.prefix, &k.service, &k.created_at.to_string()],
        )?;
        Ok(())
    }

    fn revoke_key(&mut self, prefix: &str) -> Result<KeyInfo> {
        let s = self;
        revoke(
            s,
            prefix,
            "SELECT * FROM keys WHERE starts_with(prefix, $1)",
            "UPDATE keys SET revoked = TRUE WHERE starts_with(prefix, $1)",
            key_row,
        )
        .map(|k| KeyInfo { revoked: true, ..k })
    }
}

impl CredentialReads for Reader {
    fn token(&mut self, hash: &str) -> Result<Option<TokenInfo>> {
        let client = &mut self.0;
        client
            .query_opt("SELECT * FROM tokens WHERE hash = $1", &[&hash])?
            .map(|r| token_row(&r))
            .transpose()
    }

    fn tokens(&mut self) -> Result<Vec<TokenInfo>> {
        let client = &mut self.0;
        client
            .query("SELECT * FROM tokens ORDER BY created_at, prefix", &[])?
            .iter()
            .map(token_row)
            .collect()
    }

    fn key(&mut self, hash: &str) -> Result<Option<KeyInfo>> {
        let client = &mut self.0;
        client
            .query_opt("SELECT * FROM keys WHERE hash = $1", &[&hash])?
            .map(|r| key_row(&r))
            .transpose()
    }

    fn keys(&mut self) -> Result<Vec<KeyInfo>> {
        let client = &mut self.0;
        client
            .query("SELECT * FROM keys ORDER BY created_at, prefix", &[])?
            .iter()
            .map(key_row)
            .collect()
    }
}
