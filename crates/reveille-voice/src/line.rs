//! The line: one SIP endpoint on a local port, every request sent to the team's SIP server
//! (PBX, trunk, or registrar/proxy), digest authentication answered with the configured user
//! and password. It places calls ([`Line::dial`]), registers if asked ([`Line::register`]), and
//! hands calls to the line to whoever takes [`Incoming`]s.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{HostWithPort, Method, Param, StatusCode, Transport};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transport::{SipAddr, TransportLayer, udp::UdpConnection};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::incoming::Incoming;
use crate::workarounds::{OutboundProxy, Rfc7616Spelling};
use crate::{Error, Result};

/// How the line is set up.
#[derive(Debug, Clone)]
pub struct LineConfig {
    /// The SIP server every request goes to: `sip:pbx.example.org:5060;transport=udp` (udp or
    /// tcp; 5060 when no port is given).
    pub server: String,
    /// The digest user and password.
    pub user: String,
    pub password: String,
    /// Our address of record, `sip:reveille@pbx.example.org`: the From of calls, and what is
    /// registered.
    pub from: String,
    /// The number shown to whoever is called (From's user and P-Asserted-Identity), if the
    /// server lets us choose.
    pub caller_id: Option<String>,
    /// The name shown with it.
    pub display_name: String,
    /// Where the line listens (an unspecified address: every interface; port 0: any).
    pub listen: SocketAddr,
    pub user_agent: String,
}

pub(crate) struct Inner {
    pub endpoint: EndpointInnerRef,
    pub dialogs: Arc<DialogLayer>,
    pub config: LineConfig,
    pub credential: Credential,
    /// The SIP server, where every request goes.
    pub server: SipAddr,
    /// The server's host as configured (a callee's domain).
    pub host: String,
    /// Our SIP address as others reach it.
    pub contact: SocketAddr,
    /// Where media sockets bind, and the address our SDP gives.
    pub bind_ip: IpAddr,
    pub media_ip: IpAddr,
    pub stop: CancellationToken,
}

/// An open line. Dropping it closes its port and ends its calls.
pub struct Line {
    pub(crate) inner: Arc<Inner>,
    registration: Mutex<Option<Registration>>,
}

impl Drop for Line {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

/// The server's address and transport, from `sip:host[:port][;transport=udp|tcp]`.
async fn server(uri: &str) -> Result<(SipAddr, String)> {
    let parsed = rsipstack::sip::Uri::try_from(uri)
        .map_err(|e| Error::Config(format!("{uri:?} is not a SIP URI: {e}")))?;
    let transport = parsed
        .params
        .iter()
        .find_map(|p| match p {
            Param::Transport(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(Transport::Udp);
    if !matches!(transport, Transport::Udp | Transport::Tcp) {
        return Err(Error::Config(format!("{uri:?}: the transport must be udp or tcp")));
    }
    let host = parsed.host_with_port.host.to_string();
    let port = parsed.host_with_port.port.map_or(5060, u16::from);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| Error::Config(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| Error::Config(format!("{host} has no address")))?;
    Ok((SipAddr::new(transport, HostWithPort::from(addr)), host))
}

/// The address this machine uses towards `to` (what goes in Contact and SDP when the line
/// listens on every interface).
fn route_to(to: SocketAddr) -> Result<IpAddr> {
    let unspecified: SocketAddr = match to {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("an address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("an address"),
    };
    let probe = std::net::UdpSocket::bind(unspecified)?;
    probe.connect(to)?;
    Ok(probe.local_addr()?.ip())
}

impl Line {
    /// Opens the line; calls to it arrive on the receiver (a call nobody takes is answered
    /// busy).
    pub async fn open(config: LineConfig) -> Result<(Self, mpsc::Receiver<Incoming>)> {
        let (server, host) = server(&config.server).await?;
        let server_addr = server.get_socketaddr().map_err(|e| Error::Config(e.to_string()))?;
        let media_ip = if config.listen.ip().is_unspecified() {
            route_to(server_addr)?
        } else {
            config.listen.ip()
        };
        let stop = CancellationToken::new();
        let transports = TransportLayer::new(stop.child_token());
        let socket = tokio::net::UdpSocket::bind(config.listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        // Said as the address others reach us at, never 0.0.0.0.
        let contact = SocketAddr::new(media_ip, socket.local_addr()?.port());
        let udp =
            UdpConnection::from_socket(Arc::new(socket), Some(contact), Some(stop.child_token()))
                .await?;
        transports.add_transport(udp.into());
        let mut builder = EndpointBuilder::new();
        builder
            .with_cancel_token(stop.child_token())
            .with_transport_layer(transports)
            .with_user_agent(&config.user_agent)
            .with_option(EndpointOption {
                callid_suffix: Some("reveille.invalid".into()),
                ..Default::default()
            })
            .with_target_locator(Box::new(OutboundProxy(server.clone())))
            .with_inspector(Box::new(Rfc7616Spelling));
        let endpoint = builder.build();
        let transactions = endpoint.incoming_transactions()?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let serving = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = serving.serve().await {
                tracing::warn!(error = %e, "the SIP endpoint stopped");
            }
        });
        let credential = Credential {
            username: config.user.clone(),
            password: config.password.clone(),
            realm: None,
            auth_username: None,
        };
        let inner = Arc::new(Inner {
            endpoint: endpoint.inner.clone(),
            dialogs,
            config,
            credential,
            server,
            host,
            contact,
            bind_ip: if media_ip.is_loopback() { media_ip } else { IpAddr::from([0, 0, 0, 0]) },
            media_ip,
            stop,
        });
        let (calls, incoming) = mpsc::channel(8);
        tokio::spawn(serve(inner.clone(), transactions, calls));
        Ok((Self { inner, registration: Mutex::new(None) }, incoming))
    }

    /// Where the line listens.
    pub fn local(&self) -> SocketAddr {
        self.inner.contact
    }

    /// The URI a number is called at: `sip:<number>@<server host>`, or the number itself if it
    /// is a SIP URI already.
    pub fn callee(&self, number: &str) -> String {
        if number.starts_with("sip:") || number.starts_with("sips:") {
            number.to_owned()
        } else {
            format!("sip:{number}@{}", self.inner.host)
        }
    }

    /// Registers our address of record for `expires` seconds (again: refreshes it); the
    /// server's expiry.
    pub async fn register(&self, expires: u32) -> Result<u32> {
        let mut registration = self.registration.lock().await;
        let registration = registration.get_or_insert_with(|| {
            Registration::new(self.inner.endpoint.clone(), Some(self.inner.credential.clone()))
        });
        let registrar = rsipstack::sip::Uri::try_from(format!("sip:{}", self.inner.host).as_str())
            .map_err(|e| Error::Config(e.to_string()))?;
        let answer = registration.register(registrar, Some(expires)).await?;
        match answer.status_code.code() {
            200..=299 => Ok(registration.expires()),
            _ => Err(Error::Sip(format!("the registration was refused: {}", answer.status_code))),
        }
    }
}

/// Requests from outside: in-dialog ones go to their call; a new INVITE is a call to the line.
async fn serve(
    inner: Arc<Inner>,
    mut transactions: TransactionReceiver,
    calls: mpsc::Sender<Incoming>,
) {
    loop {
        let mut tx = tokio::select! {
            tx = transactions.recv() => match tx { Some(tx) => tx, None => return },
            () = inner.stop.cancelled() => return,
        };
        if let Some(mut dialog) = inner.dialogs.match_dialog(&tx) {
            tokio::spawn(async move {
                if let Err(e) = dialog.handle(&mut tx).await {
                    tracing::debug!(error = %e, "an in-dialog request failed");
                }
            });
            continue;
        }
        let answer = match tx.original.method {
            Method::Invite => match Incoming::new(&inner, tx) {
                Ok(call) => match calls.try_send(call) {
                    Ok(()) => continue,
                    Err(refused) => {
                        let call = refused.into_inner();
                        call.refuse(StatusCode::BusyHere).await;
                        continue;
                    }
                },
                Err(refused) => {
                    let (mut tx, why) = *refused;
                    tracing::warn!(%why, "a call to the line cannot be taken");
                    let _ = tx.reply(StatusCode::ServerInternalError).await;
                    continue;
                }
            },
            Method::Options => StatusCode::OK,
            Method::Ack => continue,
            _ => StatusCode::CallTransactionDoesNotExist,
        };
        let _ = tx.reply(answer).await;
    }
}

impl Line {
    /// Keeps the registration fresh: registers now, then again before each expiry, and after
    /// a failure every `retry`; each outcome goes to `report`. Ends when the line closes.
    pub async fn keep_registered(
        &self,
        expires: u32,
        retry: Duration,
        mut report: impl FnMut(std::result::Result<u32, String>),
    ) {
        loop {
            let wait = match self.register(expires).await {
                Ok(granted) => {
                    report(Ok(granted));
                    Duration::from_secs(u64::from(granted.max(20)) * 3 / 4)
                }
                Err(e) => {
                    report(Err(e.to_string()));
                    retry
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.inner.stop.cancelled() => return,
            }
        }
    }
}
