//! Placing a call ([`Line::dial`]): the INVITE, the ring, and how it ended: answered (a
//! [`Call`]), busy, not answered or failed, with the SIP status. The dialog is followed for as
//! long as the call lasts ([`follow`]): ringing, keys sent as SIP INFO, the far end hanging up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::{Header, StatusCode};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::call::Call;
use crate::line::Line;
use crate::sdp;
use crate::{Error, Result};
/// How long a SIP server may stay silent after an INVITE before it counts as unreachable (a
/// server answers at once, with 100 Trying, however long the phone then rings).
pub const SERVER_SILENCE: Duration = Duration::from_secs(8);
/// Keys heard but not yet taken; more are dropped (a flood).
const KEYS: usize = 16;

/// How placing a call ended.
pub enum Dialed {
    Answered(Call),
    Unanswered(Unanswered),
}

/// Why nobody is on the line; each holds the SIP status line or what happened instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// It rang out (we hung up after the ring time), or the network gave up (408, 480, 487).
    NoAnswer(String),
    /// Busy (486, 600) or declined (603).
    Busy(String),
    /// Refused otherwise (403, 404, 503…), answered with no audio we can use, or the server
    /// could not be reached.
    Failed(String),
}

pub(crate) fn session_id() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(1, |d| d.as_nanos() as u64 & 0x7FFF_FFFF_FFFF)
}

impl Line {
    /// Calls `number` (E.164, or a SIP URI), letting it ring `ring_timeout`; `ringing` is
    /// called when it starts ringing (180/183).
    pub async fn dial(
        &self,
        number: &str,
        ring_timeout: Duration,
        ringing: impl FnOnce() + Send + 'static,
    ) -> Result<Dialed> {
        let inner = &self.inner;
        let config = &inner.config;
        let socket = Arc::new(UdpSocket::bind((inner.bind_ip, 0)).await?);
        let local = SocketAddr::new(inner.media_ip, socket.local_addr()?.port());
        let uri = |s: &str| {
            rsipstack::sip::Uri::try_from(s).map_err(|e| Error::Config(format!("{s:?}: {e}")))
        };
        let caller = match &config.caller_id {
            Some(id) => {
                let domain = config.from.rsplit_once('@').map_or(inner.host.as_str(), |(_, d)| d);
                format!("sip:{id}@{domain}")
            }
            None => config.from.clone(),
        };
        let mut headers = Vec::new();
        if config.caller_id.is_some() {
            headers.push(Header::Other("P-Asserted-Identity".into(), format!("<{caller}>")));
        }
        let option = InviteOption {
            caller_display_name: Some(config.display_name.clone()),
            caller: uri(&caller)?,
            callee: uri(&self.callee(number))?,
            contact: uri(&format!("sip:{}@{}", config.user, inner.contact))?,
            destination: Some(inner.server.clone()),
            content_type: Some("application/sdp".into()),
            offer: Some(sdp::offer(local, session_id()).into_bytes()),
            credential: Some(inner.credential.clone()),
            headers: Some(headers),
            ..Default::default()
        };
        let (state_tx, states) = inner.dialogs.new_dialog_state_channel();
        let (keys_tx, keys) = mpsc::channel(KEYS);
        let ended = CancellationToken::new();
        let heard = Arc::new(Notify::new());
        let responded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let said_something = {
            let (heard, responded) = (heard.clone(), responded.clone());
            move || {
                responded.store(true, Ordering::Relaxed);
                heard.notify_one();
            }
        };
        let (dialog, mut answer) = inner.dialogs.do_invite_async(option, state_tx)?;
        tokio::spawn(follow(
            states,
            Some(Box::new(ringing)),
            Box::new(said_something),
            keys_tx.clone(),
            ended.clone(),
        ));
        let server = inner.server.addr.to_string();
        let silence = async {
            if tokio::time::timeout(SERVER_SILENCE, heard.notified()).await.is_err() {
                return;
            }
            std::future::pending::<()>().await;
        };
        let answered = tokio::select! {
            answered = &mut answer => answered,
            () = tokio::time::sleep(ring_timeout) => {
                let _ = dialog.cancel().await;
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut answer).await;
                let waited = ring_timeout.as_secs();
                if !responded.load(Ordering::Relaxed) {
                    let why = format!("the SIP server {server} did not answer in {waited} s (is it reachable?)");
                    return Ok(Dialed::Unanswered(Unanswered::Failed(why)));
                }
                let rang = format!("nobody answered in {waited} s");
                return Ok(Dialed::Unanswered(Unanswered::NoAnswer(rang)));
            }
            () = silence => {
                let _ = dialog.cancel().await;
                answer.abort();
                let why = format!("the SIP server {server} did not answer in {} s (is it reachable?)", SERVER_SILENCE.as_secs());
                return Ok(Dialed::Unanswered(Unanswered::Failed(why)));
            }
        };
        let (_, response) = answered.map_err(|e| Error::Sip(e.to_string()))??;
        let Some(response) = response else {
            let why = format!("the SIP server {server} gave no final answer");
            return Ok(Dialed::Unanswered(Unanswered::Failed(why)));
        };
        let status = response.status_code.to_string();
        let unanswered = match response.status_code.code() {
            200..=299 => None,
            408 | 480 | 487 => Some(Unanswered::NoAnswer(status)),
            486 | 600 | 603 => Some(Unanswered::Busy(status)),
            _ => Some(Unanswered::Failed(status)),
        };
        if let Some(unanswered) = unanswered {
            return Ok(Dialed::Unanswered(unanswered));
        }
        let media = match sdp::read(&String::from_utf8_lossy(response.body())) {
            Ok(media) => media,
            Err(why) => {
                let _ = dialog.bye().await;
                inner.dialogs.remove_dialog(&dialog.id());
                let why = format!("answered, but its audio cannot be used: {why}");
                return Ok(Dialed::Unanswered(Unanswered::Failed(why)));
            }
        };
        Ok(Dialed::Answered(Call::start(inner, dialog, socket, media, keys_tx, keys, ended)))
    }
}

/// The dialog's events: ringing, keys sent as SIP INFO, the far end hanging up.
pub(crate) async fn follow(
    mut states: DialogStateReceiver,
    mut ringing: Option<Box<dyn FnOnce() + Send>>,
    responded: Box<dyn Fn() + Send>,
    keys: mpsc::Sender<char>,
    ended: CancellationToken,
) {
    while let Some(state) = states.recv().await {
        if !matches!(state, DialogState::Calling(_)) {
            responded();
        }
        match state {
            DialogState::Early(..) => {
                if let Some(ringing) = ringing.take() {
                    ringing();
                }
            }
            DialogState::Info(_, request, handle) => {
                let key = info_key(&request.body);
                let answer =
                    if key.is_some() { StatusCode::OK } else { StatusCode::UnsupportedMediaType };
                let _ = handle.reply(answer).await;
                if let Some(key) = key {
                    let _ = keys.try_send(key);
                }
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Terminated(..) => ended.cancel(),
            _ => {}
        }
    }
    ended.cancel();
}

/// The key of a SIP INFO body: `Signal=4` (application/dtmf-relay) or `4` (application/dtmf).
pub fn info_key(body: &[u8]) -> Option<char> {
    let body = String::from_utf8_lossy(body);
    let signal = body
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once('=')?;
            name.trim().eq_ignore_ascii_case("signal").then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| body.trim().to_owned());
    let mut chars = signal.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || "*#ABCD".contains(c) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::info_key;

    #[test]
    fn keys_in_sip_info_bodies() {
        assert_eq!(info_key(b"Signal=4\r\nDuration=160\r\n"), Some('4'));
        assert_eq!(info_key(b"signal= #\r\n"), Some('#'));
        assert_eq!(info_key(b"9"), Some('9'));
        for junk in [&b""[..], b"Signal=44", b"hello", b"Signal=x", b"\xff\xfe"] {
            assert_eq!(info_key(junk), None, "{junk:?}");
        }
    }
}
