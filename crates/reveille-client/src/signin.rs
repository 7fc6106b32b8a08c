//! Reading the saved sign-in from an OS secret store that may not answer yet: a keyring still
//! locked after login (its unlock prompt waiting for the person), or none running at all.
//!
//! Neither is the same as "not signed in", and neither may pass quietly: until the token is read
//! the device cannot ring, so the problem is reported in words (the app shows it and warns) and
//! the read is tried again, with backoff, until it works. A read that does not answer is waited
//! on, never abandoned for a new one: each would open another unlock prompt.

use std::time::Duration;

/// How long to wait on the keyring.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// How long a read may take before the person is told the keyring has not answered.
    pub answer_within: Duration,
    /// First and longest wait before reading again after a refusal.
    pub retry: (Duration, Duration),
}

impl Default for Patience {
    fn default() -> Self {
        Self {
            answer_within: Duration::from_secs(3),
            retry: (Duration::from_secs(5), Duration::from_secs(300)),
        }
    }
}

/// Said while a read waits for the keyring.
pub const NOT_ANSWERING: &str = "The system keyring has not answered: it is probably locked. \
    Unlock it (your desktop may be showing a prompt for its password).";

/// Reads the token with `load` (a blocking call into the secret store) until it answers
/// `Ok`: the token, or None when there is none saved. `report` is told of each problem as it
/// starts (`Some`), and `None` once the store answers.
pub async fn read_token<L, R>(load: L, report: R, patience: Patience) -> Option<String>
where
    L: Fn() -> Result<Option<String>, String> + Clone + Send + 'static,
    R: Fn(Option<String>),
{
    let mut wait = patience.retry.0;
    loop {
        let mut read = tokio::task::spawn_blocking(load.clone());
        let answer = match tokio::time::timeout(patience.answer_within, &mut read).await {
            Ok(answer) => answer,
            Err(_) => {
                report(Some(NOT_ANSWERING.into()));
                read.await
            }
        };
        match answer {
            Ok(Ok(token)) => {
                report(None);
                return token;
            }
            Ok(Err(problem)) => report(Some(problem)),
            Err(panic) => report(Some(format!("reading the keyring failed: {panic}"))),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(patience.retry.1);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, mpsc};

    use super::*;

    type Said = Arc<Mutex<Vec<Option<String>>>>;

    fn recorder() -> (Said, impl Fn(Option<String>)) {
        let said = Arc::new(Mutex::new(Vec::new()));
        let to = said.clone();
        (said, move |problem| to.lock().unwrap().push(problem))
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusing_keyring_is_reported_and_read_again_until_it_answers() {
        let tries = Arc::new(Mutex::new(0));
        let counted = tries.clone();
        let load = move || {
            let mut n = counted.lock().unwrap();
            *n += 1;
            if *n < 3 { Err(format!("locked ({n})")) } else { Ok(Some("rvt_token".into())) }
        };
        let (said, report) = recorder();
        let token = read_token(load, report, Patience::default()).await;
        assert_eq!(token.as_deref(), Some("rvt_token"));
        assert_eq!(*tries.lock().unwrap(), 3);
        let said = said.lock().unwrap().clone();
        assert_eq!(said, [Some("locked (1)".into()), Some("locked (2)".into()), None]);
    }

    // Real time: a blocking read in flight holds tokio's paused clock still.
    #[tokio::test]
    async fn a_read_waiting_on_an_unlock_prompt_is_reported_and_waited_for_not_repeated() {
        let (unlock, unlocked) = mpsc::channel::<()>();
        let unlocked = Arc::new(Mutex::new(unlocked));
        let tries = Arc::new(Mutex::new(0));
        let counted = tries.clone();
        let load = move || {
            *counted.lock().unwrap() += 1;
            // The person types the keyring's password into the prompt, some time later.
            unlocked.lock().unwrap().recv().map_err(|e| e.to_string())?;
            Ok(None)
        };
        let (said, report) = recorder();
        let patience = Patience { answer_within: Duration::from_millis(50), ..Patience::default() };
        let (told, mut heard) = tokio::sync::watch::channel(0);
        let reading = tokio::spawn(read_token(
            load,
            move |p| {
                report(p);
                told.send_modify(|n| *n += 1);
            },
            patience,
        ));
        heard.wait_for(|n| *n > 0).await.unwrap();
        assert_eq!(said.lock().unwrap()[0].as_deref(), Some(NOT_ANSWERING));
        unlock.send(()).unwrap();
        assert_eq!(reading.await.unwrap(), None, "nothing saved: the app asks to sign in");
        assert_eq!(*tries.lock().unwrap(), 1, "one prompt, not one per retry");
        assert_eq!(said.lock().unwrap().last(), Some(&None));
    }
}
