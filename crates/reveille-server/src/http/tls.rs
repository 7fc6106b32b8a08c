//! Native TLS (rustls) for `server.tls_cert` / `server.tls_key`, with HTTP/2 offered by ALPN.
//!
//! The certificate is read again when the process gets SIGHUP and when either file changes (a
//! look every [`LOOK_EVERY`]), so a renewal (certbot, an ACME client, a new Kubernetes secret)
//! needs no restart: new handshakes get the new certificate, open connections keep theirs. A pair
//! that cannot be used (half-written, a key that does not match) is logged and counted, and the
//! one in use stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// How often the files are looked at for a change.
pub const LOOK_EVERY: Duration = Duration::from_secs(5);

/// The certificate in use and where it comes from.
#[derive(Debug)]
pub struct Certs {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    seen: RwLock<Stamp>,
}

/// What a file looked like when last read: a replaced or rewritten file looks different.
type Stamp = [Option<(SystemTime, u64, u64)>; 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    [cert, key].map(|p| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len(), m.ino()))
    })
}

/// Reads a PEM certificate chain and its private key, and checks that they belong together.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
        format!("{} and {} do not make a usable pair: {e}", cert.display(), key.display())
    })?;
    Ok(certified)
}

impl Certs {
    pub fn open(cert: PathBuf, key: PathBuf) -> Result<Arc<Self>, String> {
        let seen = stamp(&cert, &key);
        let current = Arc::new(load(&cert, &key)?);
        Ok(Arc::new(Self { cert, key, current: RwLock::new(current), seen: RwLock::new(seen) }))
    }

    /// Reads the pair again; `Ok(false)` when it has not changed since the last read (unless
    /// `force`, for SIGHUP).
    pub fn reload(&self, force: bool) -> Result<bool, String> {
        let now = stamp(&self.cert, &self.key);
        if !force && *self.seen.read().unwrap_or_else(|p| p.into_inner()) == now {
            return Ok(false);
        }
        // Remember the look even when the pair is unusable: it is reported once, not every look.
        *self.seen.write().unwrap_or_else(|p| p.into_inner()) = now;
        let fresh = Arc::new(load(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(true)
    }

    /// An acceptor offering HTTP/2 and HTTP/1.1, always with the certificate in use.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        self.offering(&[b"h2", b"http/1.1"])
    }

    /// An acceptor offering HTTP/1.1 alone: for the reserved connection slots, which serve one
    /// request each (HTTP/2 would carry many on one connection).
    pub fn acceptor_http1(self: &Arc<Self>) -> TlsAcceptor {
        self.offering(&[b"http/1.1"])
    }

    fn offering(self: &Arc<Self>, protocols: &[&[u8]]) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// Reloads the certificate on SIGHUP and when the files change, as a job ([`crate::jobs`]).
pub struct Watch {
    certs: Arc<Certs>,
    hangup: Option<tokio::signal::unix::Signal>,
    looks: tokio::time::Interval,
    forced: bool,
}

impl Watch {
    pub fn new(certs: Arc<Certs>) -> Self {
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        let hangup = hangup
            .inspect_err(|e| {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; certificates reload on file change only")
            })
            .ok();
        Self { certs, hangup, looks: tokio::time::interval(LOOK_EVERY), forced: false }
    }
}

#[async_trait::async_trait]
impl crate::jobs::Job for Watch {
    fn name(&self) -> &'static str {
        "tls"
    }

    async fn step(&mut self, state: &crate::AppState) -> Result<(), String> {
        match self.certs.reload(std::mem::take(&mut self.forced)) {
            Ok(true) => {
                tracing::info!(cert = %self.certs.cert.display(), "TLS certificate reloaded")
            }
            Ok(false) => {}
            Err(e) => {
                state.metrics.tls_reload_failures.inc();
                return Err(format!(
                    "the new TLS certificate cannot be used; still serving the old one: {e}"
                ));
            }
        }
        Ok(())
    }

    async fn until_due(&mut self, _state: &crate::AppState) {
        self.forced = tokio::select! {
            Some(()) = async { self.hangup.as_mut()?.recv().await } => true,
            _ = self.looks.tick() => false,
        };
    }
}
