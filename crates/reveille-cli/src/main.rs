//! `reveille`: runs the server, administers its credentials, and acts as a terminal client.

mod admin;
mod client;
mod incident;
mod oncall;
mod phone;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "reveille", version, about = "A self-hosted pager")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a client command finds the server.
#[derive(Args, Clone)]
pub struct Remote {
    /// The server's base URL.
    #[arg(long, env = "REVEILLE_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    server: String,
    /// An API token (`reveille token create`).
    #[arg(long, env = "REVEILLE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Args, Clone)]
pub struct ConfigPath {
    /// The configuration file.
    #[arg(long, short, env = "REVEILLE_CONFIG", default_value = "reveille.toml")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ConfigPath),
    /// Print a commented example configuration.
    DefaultConfig,
    /// Check a configuration file and name the line of every mistake.
    CheckConfig(ConfigPath),
    /// Bring the database's schema up to date and exit (`serve` does it too, at start).
    Migrate(ConfigPath),
    /// Create, list and revoke API tokens (for people and their devices).
    Token {
        #[command(subcommand)]
        command: admin::TokenCommand,
    },
    /// Create, list and revoke integration keys (for monitoring tools).
    Key {
        #[command(subcommand)]
        command: admin::KeyCommand,
    },
    /// Replace the key that signs acknowledge links; every link already sent stops working.
    RotateLinkKey(ConfigPath),
    /// Change the link keys of a running cluster step by step, never refusing a link.
    LinkKey {
        #[command(subcommand)]
        command: admin::LinkKeyCommand,
    },
    /// Print a one-time link that signs a person in to the web console.
    WebLink(admin::WebLinkArgs),
    /// Set up a phone: the ntfy app as a pager, or a contact card that lets pages through.
    Phone {
        #[command(subcommand)]
        command: phone::PhoneCommand,
    },
    /// Page a service's on-call people.
    Page(client::PageArgs),
    /// Acknowledge an incident: "I am on it".
    Ack(client::IdArgs),
    /// Resolve an incident.
    Resolve(client::IdArgs),
    /// Silence an incident for a while; it pages again if still open.
    Snooze(client::SnoozeArgs),
    /// List open incidents.
    Incidents(client::ListArgs),
    /// Show an incident with its timeline, or export it for a postmortem.
    Incident {
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
    /// Who is on call now, or at --at, per schedule and per service level.
    Oncall(oncall::OnCallArgs),
    /// Show a schedule as a calendar.
    Schedule {
        #[command(subcommand)]
        command: oncall::ScheduleCommand,
    },
    /// Add, list and remove schedule overrides.
    Override {
        #[command(subcommand)]
        command: oncall::OverrideCommand,
    },
    /// Ring one person with a practice page; it never escalates.
    Drill(oncall::DrillArgs),
    /// How the drills went: delivered, rang, time to acknowledge.
    Drills(oncall::DrillsArgs),
    /// Place a real test call or text to a person, as a page would, and say how it went.
    NotifyTest(oncall::NotifyTestArgs),
    /// Follow your page feed in the terminal.
    Watch(watch::WatchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the async runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => admin::serve(&args.config).await,
            Command::DefaultConfig => {
                print!("{}", reveille_server::config::EXAMPLE);
                Ok(())
            }
            Command::CheckConfig(args) => admin::check_config(&args.config),
            Command::Migrate(args) => admin::migrate(&args.config),
            Command::Token { command } => admin::token(command).await,
            Command::Key { command } => admin::key(command).await,
            Command::RotateLinkKey(args) => admin::rotate_link_key(&args.config),
            Command::LinkKey { command } => admin::link_key(command),
            Command::WebLink(args) => admin::web_link(args),
            Command::Phone { command } => phone::run(command).await,
            Command::Page(args) => client::page(args).await,
            Command::Ack(args) => client::command(args, "ack").await,
            Command::Resolve(args) => client::command(args, "resolve").await,
            Command::Snooze(args) => client::snooze(args).await,
            Command::Incidents(args) => client::list(args).await,
            Command::Incident { command } => incident::run(command).await,
            Command::Oncall(args) => oncall::oncall(args).await,
            Command::Schedule { command } => oncall::schedule(command).await,
            Command::Override { command } => oncall::overrides(command).await,
            Command::Drill(args) => oncall::drill(args).await,
            Command::Drills(args) => oncall::drills(args).await,
            Command::NotifyTest(args) => oncall::notify_test(args).await,
            Command::Watch(args) => watch::watch(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
