//! `reveille phone setup --user NAME`: the topic and credentials that make the stock ntfy app a
//! pager for one person, with the exact settings to choose in the app.

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
}

pub async fn run(command: PhoneCommand) -> Result<()> {
    let PhoneCommand::Setup { config, user } = command;
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
