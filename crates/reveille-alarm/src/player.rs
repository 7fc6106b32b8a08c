//! Playing a sound on the default output. The output lives on its own thread (audio streams are
//! not `Send`); the handle is cheap to clone and tells what is playing, how loud, and whether
//! there is any output at all. On a PulseAudio or PipeWire desktop the sound server is spoken
//! to natively (`pulse`); elsewhere rodio plays through ALSA.

use std::num::NonZero;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rodio::Source;

use crate::pulse::Pulse;
use crate::synth::{SAMPLE_RATE, Sound, Synth, gain_at};
use crate::{Error, Result};

/// What the alarm is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub sound: Option<Sound>,
    /// Current gain, 0.0–1.0, while ringing.
    pub gain: f32,
    /// The sound should play but the output cannot be reached: it is silent. Tried again every
    /// second until it plays or is stopped.
    pub failed: bool,
}

/// What is sounding and since when: the gain heard now follows from it. (The samples are made
/// up to a second before they are heard, so their gain would run ahead of the speakers.)
///
/// The handle is the one owner of what should sound: `play` and `stop` set it at once and number
/// it. The audio thread only marks an outcome (failed, started over) on the status of the very
/// command it carried out, so a late `Stop` can never overwrite the `Play` that followed it.
#[derive(Debug, Clone, Copy, Default)]
struct Playing {
    sound: Option<(Sound, Instant)>,
    failed: bool,
    /// The number of the command that set this status.
    command: u64,
}

enum Command {
    /// Play a sound; the number of the command.
    Play(Sound, u64),
    Stop,
}

/// A handle to the alarm thread.
#[derive(Clone)]
pub struct Alarm {
    commands: mpsc::Sender<Command>,
    playing: Arc<Mutex<Playing>>,
}

/// The synth as a source of samples.
#[derive(Clone)]
struct Live(Synth);

impl Iterator for Live {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        self.0.next()
    }
}

impl Source for Live {
    fn current_span_len(&self) -> Option<usize> {
        None
    }

    fn channels(&self) -> rodio::ChannelCount {
        NonZero::new(1).expect("one channel")
    }

    fn sample_rate(&self) -> rodio::SampleRate {
        NonZero::new(SAMPLE_RATE).expect("a sample rate")
    }

    fn total_duration(&self) -> Option<Duration> {
        None
    }
}

/// Where the sound goes.
enum Output {
    /// A sound server (see `pulse`).
    Pulse(Pulse),
    /// No sound server found (ALSA straight to the hardware, or one the `pulseaudio` crate cannot
    /// find, such as `PULSE_SERVER=tcp:…`, which ALSA's plugin may still reach): rodio's stream,
    /// mixing silence while idle.
    Kept { _sink: rodio::MixerDeviceSink, player: rodio::Player },
}

impl Output {
    fn open() -> Result<Self, String> {
        if let Ok(server) = Pulse::connect() {
            return Ok(Output::Pulse(server));
        }
        // Stream errors are reported once, not for every audio period they repeat in.
        let reported = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let on_error = move |e: rodio::cpal::Error| {
            if !reported.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(error = %e, "the audio output reports errors");
            }
        };
        let sink = rodio::DeviceSinkBuilder::from_default_device()
            .and_then(|b| b.with_error_callback(on_error).open_sink_or_fallback())
            .map_err(|e| e.to_string())?;
        let player = rodio::Player::connect_new(sink.mixer());
        Ok(Output::Kept { _sink: sink, player })
    }

    /// Plays `live` from its start, in place of anything playing.
    fn play(&mut self, live: Live) -> Result<(), String> {
        match self {
            Output::Pulse(server) => {
                // The server stopped or restarted since: connect again.
                if !server.alive() {
                    *server = Pulse::connect()?;
                }
                server.play(live);
            }
            Output::Kept { player, .. } => {
                player.stop();
                player.append(live);
                player.play();
            }
        }
        Ok(())
    }

    /// Whether what was last played is still reaching the output.
    fn alive(&self) -> bool {
        match self {
            Output::Pulse(server) => server.alive(),
            Output::Kept { .. } => true,
        }
    }

    fn stop(&mut self) {
        match self {
            Output::Pulse(server) => server.stop(),
            Output::Kept { player, .. } => player.stop(),
        }
    }
}

impl Alarm {
    /// Opens the default output on a thread of its own; `Err(NoOutput)` if there is none.
    pub fn open() -> Result<Self> {
        let (commands, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
        let playing = Arc::new(Mutex::new(Playing::default()));
        let shared = playing.clone();
        std::thread::Builder::new()
            .name("reveille-alarm".into())
            .spawn(move || {
                let mut output = match Output::open() {
                    Ok(output) => output,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                // Marks the outcome of command `number`, unless a later command has been given.
                let mark = |number: u64, sound: Sound, failed: bool| {
                    let mut playing = lock(&shared);
                    if playing.command == number {
                        *playing = Playing { sound: Some((sound, Instant::now())), failed, command: number };
                    }
                };
                // What should be sounding (with its command's number), and whether it reached
                // the output.
                let mut wanted: Option<(Sound, u64, bool)> = None;
                loop {
                    // While a sound should play, the output is checked every second: a sound
                    // server that restarted mid-page is connected again and the sound restarted.
                    let command = match wanted {
                        None => match rx.recv() {
                            Ok(command) => Some(command),
                            Err(_) => return,
                        },
                        Some(_) => match rx.recv_timeout(Duration::from_secs(1)) {
                            Ok(command) => Some(command),
                            Err(mpsc::RecvTimeoutError::Timeout) => None,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        },
                    };
                    // Never hold the status lock while talking to the output: it may block.
                    let (sound, number) = match command {
                        Some(Command::Play(sound, number)) => (sound, number),
                        Some(Command::Stop) => {
                            wanted = None;
                            output.stop();
                            continue;
                        }
                        // A second with a sound wanted: again if it is not reaching the output.
                        None => match wanted {
                            Some((sound, number, reached)) if !(reached && output.alive()) => {
                                (sound, number)
                            }
                            _ => continue,
                        },
                    };
                    let played = output.play(Live(Synth::new(sound)));
                    if let Err(e) = &played {
                        // Receipts then say the page is silent here; said once per outage.
                        if !matches!(wanted, Some((_, _, false))) {
                            tracing::error!(error = %e, "cannot play the alarm; trying each second");
                        }
                    }
                    // A sound played again (after a reconnect) starts over.
                    if command.is_none() || played.is_err() {
                        mark(number, sound, played.is_err());
                    }
                    wanted = Some((sound, number, played.is_ok()));
                }
            })
            .map_err(|e| Error::NoOutput(e.to_string()))?;
        // A sound server that takes the connection but never answers is no output.
        match ready.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(Self { commands, playing }),
            Ok(Err(e)) => Err(Error::NoOutput(e)),
            Err(_) => Err(Error::NoOutput("the audio output did not open".into())),
        }
    }

    /// Starts `sound` from its beginning, replacing whatever was playing. The status says so at
    /// once: a ringing receipt sent right after reported the gain of before (0 %), as the audio
    /// thread had not taken the command yet.
    pub fn play(&self, sound: Sound) {
        self.command(Some(sound));
    }

    /// Silences the alarm; the status says so at once.
    pub fn stop(&self) {
        self.command(None);
    }

    /// Sets what should sound and tells the audio thread, under one lock, so the thread takes the
    /// commands in the order of their numbers.
    fn command(&self, sound: Option<Sound>) {
        let mut playing = lock(&self.playing);
        let number = playing.command + 1;
        *playing =
            Playing { sound: sound.map(|s| (s, Instant::now())), failed: false, command: number };
        let _ = self.commands.send(match sound {
            Some(sound) => Command::Play(sound, number),
            None => Command::Stop,
        });
    }

    /// What is sounding now, and at what gain.
    pub fn status(&self) -> Status {
        let playing = *lock(&self.playing);
        match playing.sound {
            None => Status { sound: None, gain: 0.0, failed: false },
            Some(_) if playing.failed => Status { sound: None, gain: 0.0, failed: true },
            Some((sound, since)) => {
                Status { sound: Some(sound), gain: gain_at(sound, since.elapsed()), failed: false }
            }
        }
    }
}

/// The status, even if a thread panicked while holding it (it is plain data, always whole).
fn lock(playing: &Mutex<Playing>) -> std::sync::MutexGuard<'_, Playing> {
    playing.lock().unwrap_or_else(|p| p.into_inner())
}
