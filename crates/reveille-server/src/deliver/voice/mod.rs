//! Calls. The team's SIP line ([`reveille_voice::Line`]) is opened by a job of each node
//! ([`Telephone`]) from `[sip]`, kept registered when asked, and answers calls to it (the
//! [`hotline`]). The notifier calls people through it ([`call`], the script of a page call) or,
//! without `[sip]`, through Twilio; what calls say is in [`words`].

pub mod hotline;
mod keypad;
mod script;
pub mod words;

pub use keypad::{Key, keypad};
pub use script::{Outcome, call, note, render, test_call};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use reveille_voice::{Incoming, Line, LineConfig, Voice};
use tokio::sync::{mpsc, watch};

use crate::AppState;

/// The registration's expiry asked for, and the wait after a failed one.
const EXPIRES: u32 = 300;
const RETRY: Duration = Duration::from_secs(30);

/// This node's SIP line, once open, how its registration last went, and its speech.
pub struct LineSlot {
    line: watch::Sender<Option<Arc<Line>>>,
    registration: Mutex<Option<Registration>>,
    /// The greeting every call starts with, rendered once per voice.
    greeting: tokio::sync::Mutex<Option<(Voice, Arc<Vec<i16>>)>>,
    /// Renderings at once: as many as there are cores.
    pub rendering: tokio::sync::Semaphore,
}

impl Default for LineSlot {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            line: watch::channel(None).0,
            registration: Mutex::default(),
            greeting: tokio::sync::Mutex::default(),
            rendering: tokio::sync::Semaphore::new(cores),
        }
    }
}

/// How the last registration went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub at: Timestamp,
    /// The expiry the server granted, or why it refused.
    pub outcome: Result<u32, String>,
}

impl LineSlot {
    /// The line, waiting up to `patience` for it to open.
    pub async fn wait(&self, patience: Duration) -> Option<Arc<Line>> {
        let mut line = self.line.subscribe();
        let open = tokio::time::timeout(patience, line.wait_for(Option::is_some)).await;
        open.ok().and_then(|l| l.ok()).and_then(|l| l.clone())
    }

    /// [`words::GREETING`] in `voice`.
    pub async fn greeting(&self, voice: &Voice) -> reveille_voice::Result<Arc<Vec<i16>>> {
        let mut greeting = self.greeting.lock().await;
        if let Some((rendered_in, samples)) = &*greeting
            && rendered_in == voice
        {
            return Ok(samples.clone());
        }
        let samples = Arc::new(voice.render(words::GREETING).await?);
        *greeting = Some((voice.clone(), samples.clone()));
        Ok(samples)
    }

    pub fn registration(&self) -> Option<Registration> {
        self.registration.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The line's settings from `[sip]`, its password read now.
fn line_config(state: &AppState) -> Result<Option<LineConfig>, String> {
    let settings = state.settings();
    let Some(sip) = &settings.sip else { return Ok(None) };
    let listen = sip.listen.parse().map_err(|e| format!("[sip] listen: {e}"))?;
    Ok(Some(LineConfig {
        server: sip.server.clone(),
        user: sip.user.clone(),
        password: settings.sip_password()?,
        from: sip.from.clone(),
        caller_id: sip.caller_id.clone(),
        display_name: sip.display_name.clone(),
        listen,
        user_agent: concat!("Reveille/", env!("CARGO_PKG_VERSION")).into(),
    }))
}

/// The SIP line as a job: opens it, keeps it registered, and answers calls to it. A
/// configuration reload starts it over with the new settings.
#[derive(Default)]
pub struct Telephone {
    calls: Option<mpsc::Receiver<Incoming>>,
    registering: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Telephone {
    fn drop(&mut self) {
        if let Some(registering) = self.registering.take() {
            registering.abort();
        }
    }
}

#[async_trait::async_trait]
impl crate::jobs::Job for Telephone {
    fn name(&self) -> &'static str {
        "sip"
    }

    async fn step(&mut self, state: &AppState) -> Result<(), String> {
        if self.calls.is_some() {
            return Ok(());
        }
        // The last job's line (before a reload) lets go of its port first.
        state.line.line.send_replace(None);
        let Some(config) = line_config(state)? else { return Ok(()) };
        let (line, calls) =
            Line::open(config).await.map_err(|e| format!("cannot open the SIP line: {e}"))?;
        let line = Arc::new(line);
        tracing::info!(local = %line.local(), "SIP line open");
        if state.settings().sip.as_ref().is_some_and(|s| s.register) {
            let (state, registering) = (state.clone(), line.clone());
            self.registering = Some(tokio::spawn(async move {
                registering
                    .keep_registered(EXPIRES, RETRY, |outcome| {
                        match &outcome {
                            Ok(expires) => tracing::debug!(expires, "SIP line registered"),
                            Err(e) => tracing::error!(error = %e, "the SIP line cannot register; retrying in 30 s"),
                        }
                        let at = state.clock.now();
                        *state.line.registration.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(Registration { at, outcome });
                    })
                    .await;
            }));
        }
        state.line.line.send_replace(Some(line));
        self.calls = Some(calls);
        Ok(())
    }

    async fn until_due(&mut self, state: &AppState) {
        let Some(calls) = &mut self.calls else {
            tokio::time::sleep(Duration::from_secs(10)).await;
            return;
        };
        match calls.recv().await {
            Some(call) => {
                tokio::spawn(hotline::answer(state.clone(), call));
            }
            None => {
                tracing::error!("the SIP line closed; opening it again");
                self.calls = None;
            }
        }
    }
}
