//! Playing a sound on the default output. The output lives on its own thread (audio streams are
//! not `Send`); the handle is cheap to clone and tells what is playing, how loud, and whether
//! there is any output at all. On a PulseAudio or PipeWire desktop the sound server is spoken
//! to natively (`pulse`); elsewhere rodio plays through ALSA.

use std::num::NonZero;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rodio::Source;

use crate::pulse::Pulse;
use crate::synth::{SAMPLE_RATE, Sound, Synth};
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

impl Status {
    const QUIET: Status = Status { sound: None, gain: 0.0, failed: false };
}

enum Command {
    Play(Sound),
    Stop,
}

/// A handle to the alarm thread.
#[derive(Clone)]
pub struct Alarm {
    commands: mpsc::Sender<Command>,
    status: Arc<Mutex<Status>>,
}

/// The synth as a source of samples, reporting its gain as it plays.
#[derive(Clone)]
struct Live {
    synth: Synth,
    status: Arc<Mutex<Status>>,
    count: u32,
}

impl Iterator for Live {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        // Ten times a second is plenty for receipts and the tray.
        self.count = (self.count + 1) % (SAMPLE_RATE / 10);
        if self.count == 0
            && let Ok(mut s) = self.status.try_lock()
        {
            s.gain = self.synth.gain();
        }
        self.synth.next()
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
        let status = Arc::new(Mutex::new(Status::QUIET));
        let shared = status.clone();
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
                let set = |status: Status| *shared.lock().unwrap_or_else(|p| p.into_inner()) = status;
                // What should be sounding, and whether it reached the output.
                let mut wanted: Option<(Sound, bool)> = None;
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
                    let sound = match command {
                        Some(Command::Play(sound)) => sound,
                        Some(Command::Stop) => {
                            wanted = None;
                            output.stop();
                            set(Status::QUIET);
                            continue;
                        }
                        // A second with a sound wanted: again if it is not reaching the output.
                        None => match wanted {
                            Some((sound, reached)) if !(reached && output.alive()) => sound,
                            _ => continue,
                        },
                    };
                    let synth = Synth::new(sound);
                    set(Status { sound: Some(sound), gain: synth.gain(), failed: false });
                    let played = output.play(Live { synth, status: shared.clone(), count: 0 });
                    if let Err(e) = &played {
                        // Receipts then say the page is silent here; said once per outage.
                        if !matches!(wanted, Some((_, false))) {
                            tracing::error!(error = %e, "cannot play the alarm; trying each second");
                        }
                        set(Status { sound: Some(sound), gain: 0.0, failed: true });
                    }
                    wanted = Some((sound, played.is_ok()));
                }
            })
            .map_err(|e| Error::NoOutput(e.to_string()))?;
        // A sound server that takes the connection but never answers is no output.
        match ready.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(Self { commands, status }),
            Ok(Err(e)) => Err(Error::NoOutput(e)),
            Err(_) => Err(Error::NoOutput("the audio output did not open".into())),
        }
    }

    /// Starts `sound` from its beginning, replacing whatever was playing. The status says so at
    /// once: a ringing receipt sent right after reported the gain of before (0 %), as the audio
    /// thread had not taken the command yet.
    pub fn play(&self, sound: Sound) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) =
            Status { sound: Some(sound), gain: Synth::new(sound).gain(), failed: false };
        let _ = self.commands.send(Command::Play(sound));
    }

    pub fn stop(&self) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = Status::QUIET;
        let _ = self.commands.send(Command::Stop);
    }

    pub fn status(&self) -> Status {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
