//! One answered call: saying things and hearing keys. Keys arrive as RFC 4733
//! telephone-events on our RTP port or as SIP INFO ([`crate::dial::follow`]); both end up in one
//! small queue (a flood of keys is cut, not buffered). A key asked for cuts short whatever is
//! being said; the others are counted and change nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::dial::session_id;
use crate::g711;
use crate::line::Inner;
use crate::rtp::{FRAME, Keypad, Stream};
use crate::sdp::{Codec, Media};

/// What happened while saying something or listening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Key(char),
    /// The far end hung up.
    HungUp,
    /// Nothing: all was said, or the wait ran out.
    Nothing,
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
