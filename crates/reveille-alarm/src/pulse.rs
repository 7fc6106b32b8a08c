//! The sound server of a Linux desktop (PulseAudio, or PipeWire's pulse server) spoken to
//! natively. One stream stays open, playing silence while idle: the server asks for more twice a
//! second, so idling costs this process almost nothing (0.03 % of a core, measured), and the
//! output is never suspended, so a page is heard at once (an output resumed from suspension can
//! first play a whole buffer of silence: two seconds on PulseAudio's null sink, measured). Playing
//! or stopping flushes what the server holds, so the change is heard within the output's latency
//! (about 50 ms), not after the queued silence. Nothing here waits on the server without a
//! deadline: a server that stops answering must not stop the alarm thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use pulseaudio::AsPlaybackSource;
use pulseaudio::protocol::{self, stream::BufferAttr, stream::StreamFlags};

use crate::synth::SAMPLE_RATE;

type Samples = Box<dyn Iterator<Item = f32> + Send>;

/// A connection to the session's sound server, with the alarm's stream.
pub struct Pulse {
    _client: pulseaudio::Client,
    stream: pulseaudio::PlaybackStream,
    playing: Arc<Mutex<Option<Samples>>>,
}

/// Bytes of `ms` milliseconds of our mono f32 samples.
const fn bytes(ms: u32) -> u32 {
    SAMPLE_RATE / 1000 * ms * 4
}

impl Pulse {
    /// Connects to the session's server and opens the stream; an error when there is none, or
    /// when it does not answer within five seconds.
    pub fn connect() -> Result<Self, String> {
        let path = pulseaudio::socket_path_from_env().ok_or("no sound server in this session")?;
        let socket = std::os::unix::net::UnixStream::connect(&path)
            .and_then(|s| s.set_read_timeout(Some(ANSWER)).map(|()| s))
            .and_then(|s| s.set_write_timeout(Some(ANSWER)).map(|()| s))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let cookie = pulseaudio::cookie_path_from_env().and_then(|p| std::fs::read(p).ok());
        let client =
            pulseaudio::Client::new_unix(c"Reveille", socket, cookie).map_err(|e| e.to_string())?;
        let mut props = protocol::Props::new();
        props.set(protocol::Prop::MediaName, c"Reveille alarm");
        // No media role: desktops turn "event" streams down with their alert-sound slider, and an
        // alarm must sound on the default output at the output's volume.
        let params = protocol::PlaybackStreamParams {
            sample_spec: protocol::SampleSpec {
                format: protocol::SampleFormat::Float32Le,
                channels: 1,
                sample_rate: SAMPLE_RATE,
            },
            channel_map: protocol::ChannelMap::mono(),
            // Asked for 500 ms at a time: two wakeups a second. With `adjust_latency` the server
            // gives the output (1100 − 2 × 500) / 2 = 50 ms of the 1.1 s: the time from a flush to
            // the new sound.
            buffer_attr: BufferAttr {
                max_length: u32::MAX,
                target_length: bytes(1100),
                pre_buffering: u32::MAX,
                minimum_request_length: bytes(500),
                fragment_size: u32::MAX,
            },
            flags: StreamFlags { adjust_latency: true, ..Default::default() },
            props,
            ..Default::default()
        };
        let playing: Arc<Mutex<Option<Samples>>> = Arc::default();
        let source = playing.clone();
        let fill = move |buf: &mut [u8]| {
            let whole = buf.len() - buf.len() % 4;
            let mut source = source.lock().unwrap_or_else(|p| p.into_inner());
            for sample in buf[..whole].chunks_exact_mut(4) {
                let next = source.as_mut().and_then(Iterator::next).unwrap_or(0.0);
                sample.copy_from_slice(&next.to_le_bytes());
            }
            whole
        };
        let stream =
            within(ANSWER, client.create_playback_stream(params, fill.as_playback_source()))
                .ok_or("the sound server did not answer")?
                .map_err(|e| e.to_string())?;
        Ok(Self { _client: client, stream, playing })
    }

    /// Whether the server still has our stream: false once the connection is gone (the server
    /// stopped or restarted). Asks nothing of the server.
    pub fn alive(&self) -> bool {
        self.stream.source_eof().now_or_never().is_none()
    }

    /// Plays `samples` (mono, at the synth's rate; the server converts them) on the default
    /// output from now on, in place of anything playing.
    pub fn play(&self, samples: impl Iterator<Item = f32> + Send + 'static) {
        *self.playing.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(samples));
        self.flush();
    }

    /// Silence from now on.
    pub fn stop(&self) {
        *self.playing.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.flush();
    }

    /// Asks the server to drop what it holds, without waiting for its answer (the first poll sends
    /// the command). Were it lost, the change is heard anyway at the next request, within 0.55 s.
    fn flush(&self) {
        let _ = self.stream.flush().now_or_never();
    }
}

/// How long the server has to answer a connection or a new stream.
const ANSWER: Duration = Duration::from_secs(5);

/// Waits for `future` at most `limit`.
fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let (expired, deadline) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = expired.send(());
    });
    match futures::executor::block_on(futures::future::select(std::pin::pin!(future), deadline)) {
        futures::future::Either::Left((done, _)) => Some(done),
        futures::future::Either::Right(_) => None,
    }
}
