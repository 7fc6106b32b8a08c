//! On-call commands: `oncall`, `schedule show`, `override add|list|remove`, `drill`, `drills`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Unit};
use reveille_protocol::Incident;
use reveille_protocol::api::{
    DrillList, DrillRequest, NotifyTestOutcome, NotifyTestRequest, OnCallReport, OverrideRequest,
    OverrideView, ScheduleView,
};

use crate::Remote;
use crate::client::{api, output, print_json};

/// Reads "2026-12-24T09:00:00Z", or a local "2026-12-24 09:00" in this machine's time zone.
pub fn parse_time(text: &str) -> Result<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let local: jiff::civil::DateTime = text.parse().with_context(|| {
        format!("{text:?} is not a time like 2026-12-24T09:00 or 2026-12-24T09:00:00Z")
    })?;
    Ok(local.to_zoned(TimeZone::system())?.timestamp())
}

fn query_time(t: Timestamp) -> String {
    t.to_string().replace('+', "%2B")
}

#[derive(Args)]
pub struct OnCallArgs {
    /// The instant to ask about (default: now).
    #[arg(long)]
    at: Option<String>,
    /// Only this schedule.
    #[arg(long)]
    schedule: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

pub async fn oncall(args: OnCallArgs) -> Result<()> {
    let api = api(&args.remote)?;
    let mut path = "/api/v1/oncall?".to_string();
    if let Some(at) = &args.at {
        path += &format!("at={}&", query_time(parse_time(at)?));
    }
    if let Some(s) = &args.schedule {
        path += &format!("schedule={s}");
    }
    let report: OnCallReport = api.get(&path).await?;
    if args.remote.json {
        return print_json(&report);
    }
    println!("On call at {}", report.at.round(Unit::Second)?);
    for s in &report.schedules {
        let who = s.primary.as_deref().unwrap_or("NOBODY");
        let shadows = if s.shadows.is_empty() {
            String::new()
        } else {
            format!(" (shadow: {})", s.shadows.join(", "))
        };
        let until = s.until.map_or(String::new(), |u| format!(" until {u}"));
        println!("  schedule {:<20} {who}{shadows}{until}", s.schedule);
    }
    for svc in &report.services {
        println!("  service {}:", svc.service);
        for l in &svc.levels {
            let who =
                if l.primaries.is_empty() { "NOBODY".to_string() } else { l.primaries.join(", ") };
            let shadows = if l.shadows.is_empty() {
                String::new()
            } else {
                format!(" (shadow: {})", l.shadows.join(", "))
            };
            println!("    level {}: {who}{shadows}, then {} min", l.level, l.delay_minutes);
        }
        if svc.repeat > 0 {
            println!("    repeats {} more time(s)", svc.repeat);
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// A text calendar of who is on call, day by day, on the schedule's own clock.
    Show {
        schedule: String,
        #[arg(long, default_value_t = 14)]
        days: u32,
        /// Start here instead of now.
        #[arg(long)]
        from: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

pub async fn schedule(command: ScheduleCommand) -> Result<()> {
    let ScheduleCommand::Show { schedule, days, from, remote } = command;
    let api = api(&remote)?;
    let mut path = format!("/api/v1/schedules/{schedule}?days={days}");
    if let Some(from) = &from {
        path += &format!("&from={}", query_time(parse_time(from)?));
    }
    let view: ScheduleView = api.get(&path).await?;
    if remote.json {
        return print_json(&view);
    }
    print!("{}", calendar(&view)?);
    Ok(())
}

/// One line per day: who holds the pager, and when it changes hands that day.
pub fn calendar(view: &ScheduleView) -> Result<String> {
    let tz = TimeZone::get(&view.time_zone)?;
    let mut out = format!("{} ({})\n", view.schedule, view.time_zone);
    let (Some(first), Some(last)) = (view.shifts.first(), view.shifts.last()) else {
        return Ok(out);
    };
    let mut day = first.start.to_zoned(tz.clone()).date();
    loop {
        let day_start = day.to_zoned(tz.clone())?.timestamp();
        if day_start >= last.end {
            break;
        }
        let day_end = day.tomorrow()?.to_zoned(tz.clone())?.timestamp();
        let mut parts = Vec::new();
        for shift in view.shifts.iter().filter(|s| s.start < day_end && s.end > day_start) {
            let who = shift.primary.as_deref().unwrap_or("nobody");
            let who = if shift.shadows.is_empty() {
                who.to_string()
            } else {
                format!("{who} (+{})", shift.shadows.join(", "))
            };
            if shift.start > day_start {
                let at = shift.start.to_zoned(tz.clone()).time();
                parts.push(format!("{:02}:{:02} {who}", at.hour(), at.minute()));
            } else {
                parts.push(who);
            }
        }
        if !parts.is_empty() {
            out += &format!("{} {}  {}\n", day.strftime("%a"), day, parts.join("  → "));
        }
        day = day.tomorrow()?;
    }
    Ok(out)
}

#[derive(Subcommand)]
pub enum OverrideCommand {
    /// Give someone the pager of a schedule for a while.
    Add {
        #[arg(long)]
        schedule: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        end: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List overrides made through the API or the command line.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove an override by its number.
    Remove {
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
}

fn show_override(o: &OverrideView) {
    println!(
        "#{:<4} {:<16} {:<12} {} → {} (by {})",
        o.id, o.schedule, o.user, o.start, o.end, o.created_by
    );
}

pub async fn overrides(command: OverrideCommand) -> Result<()> {
    match command {
        OverrideCommand::Add { schedule, user, start, end, remote } => {
            let body = OverrideRequest { user, start: parse_time(&start)?, end: parse_time(&end)? };
            let saved: OverrideView = api(&remote)?
                .post(&format!("/api/v1/schedules/{schedule}/overrides"), &body)
                .await?;
            output(&saved, remote.json, show_override)
        }
        OverrideCommand::List { remote } => {
            let list: Vec<OverrideView> = api(&remote)?.get("/api/v1/overrides").await?;
            if remote.json {
                return print_json(&list);
            }
            list.iter().for_each(show_override);
            Ok(())
        }
        OverrideCommand::Remove { id, remote } => {
            let removed: OverrideView =
                api(&remote)?.delete(&format!("/api/v1/overrides/{id}")).await?;
            output(&removed, remote.json, show_override)
        }
    }
}

#[derive(Args)]
pub struct DrillArgs {
    /// Drill this person.
    #[arg(long, conflicts_with = "schedule")]
    user: Option<String>,
    /// Drill whoever is primary on this schedule now.
    #[arg(long)]
    schedule: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

pub async fn drill(args: DrillArgs) -> Result<()> {
    if args.user.is_none() && args.schedule.is_none() {
        bail!("say whom to drill: --user NAME or --schedule NAME");
    }
    let body = DrillRequest { user: args.user, schedule: args.schedule };
    let incident: Incident = api(&args.remote)?.post("/api/v1/drills", &body).await?;
    if args.remote.json {
        return print_json(&incident);
    }
    println!(
        "Drill #{} is ringing {}. Results: reveille drills",
        incident.id,
        incident.paged.join(", ")
    );
    Ok(())
}

#[derive(Args)]
pub struct NotifyTestArgs {
    /// The person to call or text.
    #[arg(long)]
    user: String,
    /// `call` or `sms`.
    #[arg(long)]
    channel: String,
    #[command(flatten)]
    remote: Remote,
}

/// A real test call or text through the server, as a page would go; fails unless it went.
pub async fn notify_test(args: NotifyTestArgs) -> Result<()> {
    let body = NotifyTestRequest { channel: args.channel };
    let path = format!("/api/v1/people/{}/notify-test", args.user);
    let outcome: NotifyTestOutcome = api(&args.remote)?.post(&path, &body).await?;
    if args.remote.json {
        print_json(&outcome)?;
    } else {
        let verdict = if outcome.ok { "went through" } else { "FAILED" };
        println!("Test {} to {} {verdict}: {}", outcome.channel, outcome.user, outcome.outcome);
    }
    if !outcome.ok {
        bail!("the test {} did not reach {}", outcome.channel, outcome.user);
    }
    Ok(())
}

#[derive(Args)]
pub struct DrillsArgs {
    #[command(flatten)]
    remote: Remote,
}

pub async fn drills(args: DrillsArgs) -> Result<()> {
    let list: DrillList = api(&args.remote)?.get("/api/v1/drills").await?;
    if args.remote.json {
        return print_json(&list);
    }
    println!(
        "{:<6} {:<12} {:<22} {:<10} {:<10} {:<10}",
        "DRILL", "USER", "STARTED", "DELIVERED", "RANG", "ACKED IN"
    );
    for d in &list.drills {
        let after = |t: Option<Timestamp>| {
            t.map_or("-".to_string(), |t| {
                format!("{:.0}s", t.duration_since(d.started_at).as_secs_f64())
            })
        };
        let rang = if d.silent { "SILENT".to_string() } else { after(d.ringing_at) };
        let acked = d.seconds_to_ack.map_or("not yet".to_string(), |s| format!("{s:.0}s"));
        println!(
            "#{:<5} {:<12} {:<22} {:<10} {:<10} {:<10}",
            d.incident_id,
            d.user,
            d.started_at.round(Unit::Second)?.to_string(),
            after(d.delivered_at),
            rang,
            acked
        );
    }
    Ok(())
}
