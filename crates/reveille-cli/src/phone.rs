//! `reveille phone setup --user NAME`: the topic and credentials that make the stock ntfy app a
//! pager for one person, with the exact settings to choose in the app. `reveille phone vcard`:
//! a contact card with every number Reveille calls and texts from, to save on the phone and let
//! through Do Not Disturb (see the README's "Calls and texts").

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use jiff::Timestamp;
use reveille_server::deliver::ntfy::new_topic;
use reveille_server::http::auth::mint_token;
use reveille_store::TokenInfo;

use crate::admin::{settings, store};

#[derive(Subcommand)]
pub enum PhoneCommand {
    /// Print the server URL, topic and app settings for a user's phone (and a token for it).
    Setup {
        #[arg(long, short, env = "REVEILLE_CONFIG", default_value = "reveille.toml")]
        config: PathBuf,
        #[arg(long)]
        user: String,
    },
    /// Write a contact card (vCard 3.0) with every caller ID and sender number of this server.
    Vcard {
        #[arg(long, short, env = "REVEILLE_CONFIG", default_value = "reveille.toml")]
        config: PathBuf,
        /// Where to write it (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

pub async fn run(command: PhoneCommand) -> Result<()> {
    let (config, user) = match command {
        PhoneCommand::Setup { config, user } => (config, user),
        PhoneCommand::Vcard { config, out } => return vcard(&config, out),
    };
    let settings = settings(&config)?;
    if settings.users.iter().all(|u| u.name != user) {
        bail!("no user {user:?} in {}", config.display());
    }
    let store = store(&settings)?;
    let topic = store.phone_topic(&user, &new_topic(), Timestamp::now()).await?;
    let minted = mint_token();
    let info = TokenInfo {
        prefix: minted.prefix.clone(),
        user: user.clone(),
        scopes: vec!["read".into()],
        created_at: Timestamp::now(),
        last_used_at: None,
        revoked: false,
    };
    store.add_token(&minted.hash, info).await?;
    let server = settings.server.base_url.trim_end_matches('/');
    println!(
        "Your phone as a pager for {user}, with the ntfy app (Android; F-Droid or Google Play):

  1. Settings → General → \"Keep alerting for highest priority\": ON
     (pages arrive at priority 5 and ring until you act; low-urgency ones at priority 3)
  2. Settings → Users → Add user:
       Service URL  {server}
       Username     {user}
       Password     the token on the last line below (token {prefix}, read-only; revoke with
                    `reveille token revoke {prefix}`)
  3. + → Subscribe to topic:
       Topic        {topic}
       \"Use another server\": {server}
       Instant delivery: ON
  4. Let ntfy ignore battery optimisation and Do Not Disturb (Android settings → Apps → ntfy).
  5. Test it: reveille drill --user {user}

Each page has an Acknowledge button; an acknowledgement anywhere withdraws the notification.
The token is shown only this once:",
        prefix = minted.prefix
    );
    println!("{}", minted.secret);
    Ok(())
}

/// The contact card: every number this server calls or texts from.
fn vcard(config: &std::path::Path, out: Option<PathBuf>) -> Result<()> {
    let settings = settings(config)?;
    let card = reveille_server::config::telephony::vcard(&settings)
        .ok_or_else(|| anyhow::anyhow!("{} sets no caller ID or sender number: set [sip] caller_id, [sms] number or [twilio] from", config.display()))?;
    match out {
        Some(path) => {
            std::fs::write(&path, card)?;
            eprintln!(
                "Wrote {}: open it on the phone, save the contact, and let it through Do Not Disturb.",
                path.display()
            );
        }
        None => print!("{card}"),
    }
    Ok(())
}
