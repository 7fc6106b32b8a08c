//! Email over SMTP (lettre): one mail per page with the summary, details, runbook and a signed
//! single-use acknowledge link; state changes as replies in the same thread; several at once as
//! one digest (see [`crate::deliver::notify`] for when).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MessageBuilder};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reveille_protocol::{Incident, IncidentState};

use crate::config::Settings;
use crate::deliver::notify::Failure;

/// Incidents a digest shows in full, then as one line each; the rest are counted.
pub const DIGEST_FULL: usize = 20;
pub const DIGEST_LINES: usize = 200;

/// What one mail tells a person about one incident.
#[derive(Debug, Clone)]
pub enum Item {
    /// A page, with its acknowledge link.
    Page { incident: Incident, ack_url: Option<String> },
    /// A change of state after a page.
    Update(Incident),
}

impl Item {
    pub fn incident(&self) -> &Incident {
        match self {
            Self::Page { incident, .. } | Self::Update(incident) => incident,
        }
    }
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of the Message-IDs this server makes.
    domain: String,
}

impl Mailer {
    /// The mailer `[email]` describes; `None` without one.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, String> {
        let Some(email) = &settings.email else { return Ok(None) };
        let mut tls = TlsParameters::builder(email.host.clone());
        if let Some(ca) = &email.ca_file {
            let path = settings.dir.join(ca);
            let pem = std::fs::read(&path).map_err(|e| format!("email.ca_file: {e}"))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| format!("email.ca_file: {e}"))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls.build_rustls().map_err(|e| format!("email: {e}"))?;
        let (port, tls) = match email.security.as_str() {
            "tls" => (465, Tls::Wrapper(tls)),
            "none" => (25, Tls::None),
            _ => (587, Tls::Required(tls)),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host)
            .port(email.port.unwrap_or(port))
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&email.username, settings.smtp_password()?) {
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from: Mailbox = email.from.parse().map_err(|e| format!("email.from: {e}"))?;
        let domain = from.email.domain().to_owned();
        Ok(Some(Self { transport: builder.build(), from, domain }))
    }

    /// Sends one mail; the server's answer, or why it was not taken. Only a permanent refusal
    /// (a 5xx) or a mail that cannot be made is final; a 4xx (greylisting, a full mailbox), a
    /// connection or TLS that failed, a timeout may pass.
    pub async fn send(&self, message: Message) -> Result<String, Failure> {
        match self.transport.send(message).await {
            Ok(answer) => {
                Ok(format!("{} {}", answer.code(), answer.message().collect::<Vec<_>>().join(" ")))
            }
            Err(e) if e.is_permanent() || e.is_client() => Err(Failure::permanent(e.to_string())),
            Err(e) => Err(Failure::transient(e.to_string())),
        }
    }

    /// The mail telling `to` (the person `user`) about `items`.
    pub fn compose(&self, to: Mailbox, user: &str, items: &[Item]) -> Result<Message, String> {
        compose(&self.from, &self.domain, to, user, items)
    }
}

/// The thread of one incident's mails to one person.
pub fn thread_id(domain: &str, incident: i64, user: &str) -> String {
    format!("<incident-{incident}.{user}@{domain}>")
}

fn subject(incident: &Incident) -> String {
    let summary: String =
        incident.summary.chars().map(|c| if c.is_control() { ' ' } else { c }).take(150).collect();
    let severity = incident.severity.as_str();
    format!("[Reveille] {severity} {}: {summary} (#{})", incident.service, incident.id)
}

/// The mail, as text: pure, so what a person reads is tested without a mail server.
pub fn compose(
    from: &Mailbox,
    domain: &str,
    to: Mailbox,
    user: &str,
    items: &[Item],
) -> Result<Message, String> {
    let builder = Message::builder().from(from.clone()).to(to);
    let (builder, body): (MessageBuilder, String) = match items {
        [Item::Page { incident, ack_url }] => (
            builder.subject(subject(incident)).message_id(Some(thread_id(
                domain,
                incident.id,
                user,
            ))),
            page_text(incident, ack_url.as_deref()),
        ),
        [Item::Update(incident)] => {
            let thread = thread_id(domain, incident.id, user);
            (
                builder
                    .subject(format!("Re: {}", subject(incident)))
                    .in_reply_to(thread.clone())
                    .references(thread),
                update_text(incident),
            )
        }
        _ => {
            let pages = items.iter().filter(|i| matches!(i, Item::Page { .. })).count();
            let subject = format!(
                "[Reveille] {pages} new page(s) and {} update(s) for you",
                items.len() - pages
            );
            // A storm's digest stays readable: the first in full, then a line each, then a count.
            let mut parts: Vec<String> = items
                .iter()
                .take(DIGEST_FULL)
                .map(|item| match item {
                    Item::Page { incident, ack_url } => page_text(incident, ack_url.as_deref()),
                    Item::Update(incident) => update_text(incident),
                })
                .collect();
            let lines: Vec<String> = items
                .iter()
                .skip(DIGEST_FULL)
                .take(DIGEST_LINES)
                .map(|item| {
                    let i = item.incident();
                    format!(
                        "#{} {} [{}] {}: {}",
                        i.id,
                        i.state.as_str(),
                        i.severity.as_str(),
                        i.service,
                        i.summary
                    )
                })
                .collect();
            if !lines.is_empty() {
                parts.push(lines.join("\n"));
            }
            let rest = items.len().saturating_sub(DIGEST_FULL + DIGEST_LINES);
            if rest > 0 {
                parts.push(format!("…and {rest} more: open Reveille to see them all."));
            }
            let body = parts.join("\n----------------------------------------\n\n");
            (builder.subject(subject), body)
        }
    };
    builder.header(ContentType::TEXT_PLAIN).body(body).map_err(|e| e.to_string())
}

fn page_text(incident: &Incident, ack_url: Option<&str>) -> String {
    let mut text = format!(
        "{}\n\nIncident #{} on {} · {} · {} urgency\n",
        incident.summary,
        incident.id,
        incident.service,
        incident.severity.as_str(),
        incident.urgency.as_str()
    );
    if !incident.source.is_empty() {
        text.push_str(&format!("Source: {}\n", incident.source));
    }
    if let Some(url) = ack_url {
        text.push_str(&format!("\nAcknowledge (opens a page to confirm; works once):\n{url}\n"));
    }
    if let Some(runbook) = &incident.runbook_url {
        text.push_str(&format!("\nRunbook: {runbook}\n"));
    }
    if !incident.links.is_empty() {
        text.push_str("\nLinks:\n");
        for link in &incident.links {
            text.push_str(&format!(
                "- {}: {}\n",
                link.text.as_deref().unwrap_or("link"),
                link.href
            ));
        }
    }
    let details = serde_json::to_string_pretty(&incident.details).unwrap_or_default();
    if details != "{}" && details != "null" {
        let cut: String = details.chars().take(4000).collect();
        let more = if cut.len() < details.len() { "\n…" } else { "" };
        text.push_str(&format!("\nDetails:\n{cut}{more}\n"));
    }
    text
}

fn update_text(incident: &Incident) -> String {
    let by = match incident.state {
        IncidentState::Acknowledged => incident.acknowledged_by.as_deref(),
        IncidentState::Resolved => incident.resolved_by.as_deref(),
        _ => None,
    };
    let by = by.map(|b| format!(" by {b}")).unwrap_or_default();
    format!(
        "Incident #{} ({}) is now {}{by}.\n{}\n",
        incident.id,
        incident.service,
        incident.state.as_str(),
        incident.summary
    )
}
