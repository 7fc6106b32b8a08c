//! One call: placing it ([`Line::dial`]) and, once answered, saying things and hearing keys.
//! Keys arrive as RFC 4733 telephone-events on our RTP port or as SIP INFO; both end up in one
//! small queue (a flood of keys is cut, not buffered). A key asked for cuts short whatever is
//! being said; the others are counted and change nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::line::{Inner, Line};
use crate::rtp::{FRAME, Keypad, Stream};
use crate::sdp::{self, Codec, Media};
use crate::{Error, Result, g711};

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

/// What happened while saying something or listening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Key(char),
    /// The far end hung up.
    HungUp,
    /// Nothing: all was said, or the wait ran out.
    Nothing,
}

fn session_id() -> u64 {
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

/// A call someone answered.
pub struct Call {
    dialog: InviteDialog,
    dialogs: Arc<DialogLayer>,
    socket: Arc<UdpSocket>,
    media: Media,
    stream: Stream,
    keys: mpsc::Receiver<char>,
    ended: CancellationToken,
    received: Arc<AtomicU64>,
    receiving: tokio::task::JoinHandle<()>,
    said: Duration,
    ignored: u32,
    hung_up: bool,
    /// When the call was answered, how long until its first audio went out, and when the last
    /// key asked for was heard.
    answered: std::time::Instant,
    first_audio: Option<Duration>,
    key_heard: Option<std::time::Instant>,
}

impl Call {
    pub(crate) fn start(
        inner: &Inner,
        dialog: InviteDialog,
        socket: Arc<UdpSocket>,
        media: Media,
        keys_tx: mpsc::Sender<char>,
        keys: mpsc::Receiver<char>,
        ended: CancellationToken,
    ) -> Self {
        let received = Arc::new(AtomicU64::new(0));
        let receiving = tokio::spawn(receive(
            socket.clone(),
            media.events,
            keys_tx,
            received.clone(),
            ended.clone(),
        ));
        let stream = Stream::new(session_id() as u32, media.codec.payload_type());
        Self {
            dialog,
            dialogs: inner.dialogs.clone(),
            socket,
            media,
            stream,
            keys,
            ended,
            received,
            receiving,
            said: Duration::ZERO,
            ignored: 0,
            hung_up: false,
            answered: std::time::Instant::now(),
            first_audio: None,
            key_heard: None,
        }
    }

    pub fn codec(&self) -> Codec {
        self.media.codec
    }

    /// RTP packets that came from the far end (none: one-way audio, or a phone that sends
    /// nothing until a key).
    pub fn packets_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// How long after the answer the first audio went out.
    pub fn first_audio(&self) -> Option<Duration> {
        self.first_audio
    }

    /// When the last key asked for was heard.
    pub fn key_heard(&self) -> Option<std::time::Instant> {
        self.key_heard
    }

    /// How much audio has gone out.
    pub fn said(&self) -> Duration {
        self.said
    }

    /// Says `samples` (8 kHz), in real time, until all is said, one of `keys` is pressed or
    /// the far end hangs up. Other keys are counted ([`Call::ignored`]) and change nothing.
    pub async fn say(&mut self, samples: &[i16], keys: &str) -> Heard {
        let payload = g711::encode(self.media.codec, samples);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for frame in payload.chunks(FRAME) {
            tokio::select! {
                biased;
                () = self.ended.cancelled() => return Heard::HungUp,
                key = self.keys.recv() => match key {
                    None => return Heard::HungUp,
                    Some(key) if keys.contains(key) => {
                        self.key_heard = Some(std::time::Instant::now());
                        return Heard::Key(key);
                    }
                    Some(_) => {
                        self.ignored += 1;
                        continue;
                    }
                },
                _ = tick.tick() => {}
            }
            let packet = self.stream.packet(frame);
            if let Err(e) = self.socket.send_to(&packet, self.media.peer).await {
                tracing::debug!(error = %e, peer = %self.media.peer, "an RTP packet was not sent");
            }
            self.first_audio.get_or_insert_with(|| self.answered.elapsed());
            self.said += Duration::from_millis(20);
        }
        Heard::Nothing
    }

    /// Keys pressed that were none of those asked for.
    pub fn ignored(&self) -> u32 {
        self.ignored
    }

    /// Waits up to `wait` for one of `keys`, keeping the line alive with silence.
    pub async fn listen(&mut self, wait: Duration, keys: &str) -> Heard {
        let silence = vec![0i16; (wait.as_millis() as usize * crate::RATE / 1000).max(FRAME)];
        let heard = self.say(&silence, keys).await;
        self.said = self.said.saturating_sub(wait);
        heard
    }

    /// Whether the far end has hung up.
    pub fn ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// Hangs up (BYE) unless the far end has.
    pub async fn hang_up(mut self) {
        self.hung_up = true;
        if !self.ended.is_cancelled()
            && let Err(e) = self.dialog.bye().await
        {
            tracing::debug!(error = %e, "the BYE failed");
        }
        self.dialogs.remove_dialog(&self.dialog.id());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.receiving.abort();
        if !self.hung_up {
            let (dialog, dialogs, ended) =
                (self.dialog.clone(), self.dialogs.clone(), self.ended.clone());
            tokio::spawn(async move {
                if !ended.is_cancelled() {
                    let _ = dialog.bye().await;
                }
                dialogs.remove_dialog(&dialog.id());
            });
        }
    }
}

/// Our RTP port: counts what comes, and passes on the keys among it.
async fn receive(
    socket: Arc<UdpSocket>,
    events: Option<u8>,
    keys: mpsc::Sender<char>,
    received: Arc<AtomicU64>,
    ended: CancellationToken,
) {
    let mut keypad = Keypad::default();
    let mut buffer = [0u8; 2048];
    loop {
        let n = tokio::select! {
            got = socket.recv_from(&mut buffer) => match got {
                Ok((n, _)) => n,
                Err(_) => continue,
            },
            () = ended.cancelled() => return,
        };
        received.fetch_add(1, Ordering::Relaxed);
        if let Some(key) = keypad.heard(&buffer[..n], events) {
            let _ = keys.try_send(key);
        }
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
