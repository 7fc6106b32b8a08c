//! [`Credentials`] for every backend: written on the writer thread, read on a read connection.

use async_trait::async_trait;
use jiff::Timestamp;

use super::Credentials;
use crate::backend::{CredentialReads, CredentialWrites};
use crate::{Backend, KeyInfo, Result, TokenInfo};

#[async_trait]
impl<B: Backend> Credentials for B {
    async fn add_token(&self, hash: &str, info: TokenInfo) -> Result<()> {
        let hash = hash.to_owned();
        self.writer().write(move |s| s.add_token(&hash, &info)).await
    }

    async fn token(&self, hash: &str) -> Result<Option<TokenInfo>> {
        let hash = hash.to_owned();
        self.read(move |r| r.token(&hash)).await
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.read(|r| r.tokens()).await
    }

    async fn revoke_token(&self, prefix: &str) -> Result<TokenInfo> {
        let prefix = prefix.to_owned();
        self.writer().write(move |s| s.revoke_token(&prefix)).await
    }

    async fn touch_token(&self, hash: &str, now: Timestamp) -> Result<()> {
        let hash = hash.to_owned();
        self.writer().write(move |s| s.touch_token(&hash, now)).await
    }

    async fn add_key(&self, hash: &str, info: KeyInfo) -> Result<()> {
        let hash = hash.to_owned();
        self.writer().write(move |s| s.add_key(&hash, &info)).await
    }

    async fn key(&self, hash: &str) -> Result<Option<KeyInfo>> {
        let hash = hash.to_owned();
        self.read(move |r| r.key(&hash)).await
    }

    async fn keys(&self) -> Result<Vec<KeyInfo>> {
        self.read(|r| r.keys()).await
    }

    async fn revoke_key(&self, prefix: &str) -> Result<KeyInfo> {
        let prefix = prefix.to_owned();
        self.writer().write(move |s| s.revoke_key(&prefix)).await
    }
}
