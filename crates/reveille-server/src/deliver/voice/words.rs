//! What calls say and texts write, as pure functions of the incidents and the time: one page
//! or a bundle of them ("three incidents, two on payments…"), the keys, the answers to them.
//! Texts are GSM-7 and at most 160 characters, so one text is one SMS.

use jiff::{SignedDuration, Timestamp};
use reveille_protocol::Incident;

/// The keys a call listens for.
pub const KEYS: &str = "Press 4 to acknowledge, 6 to escalate, or 9 to hear this again.";
/// The longest a summary is said or written.
const SUMMARY: usize = 200;
/// The most incidents a call names one by one.
const NAMED: usize = 5;
/// One SMS.
pub const SMS: usize = 160;

/// How long something has been open, in words: "less than a minute", "3 minutes", "2 hours".
pub fn age(open: SignedDuration) -> String {
    let minutes = open.as_secs().max(0) / 60;
    let plural =
        |n: i64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    match minutes {
        0 => "less than a minute".into(),
        1..=119 => plural(minutes, "minute"),
        _ if minutes < 48 * 60 => plural(minutes / 60, "hour"),
        _ => plural(minutes / (24 * 60), "day"),
    }
}

fn cut(text: &str, max: usize) -> String {
    let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        return text;
    }
    let mut short: String = text.chars().take(max.saturating_sub(3)).collect();
    short.push_str("...");
    short
}

fn number_word(n: usize) -> String {
    const WORDS: [&str; 11] =
        ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
    WORDS.get(n).map_or_else(|| n.to_string(), |w| (*w).to_owned())
}

/// What every call starts with (rendered once, said while the rest is rendered).
pub const GREETING: &str = "Reveille page.";

/// What a call says for `pages` after [`GREETING`] (the first is the oldest), then the keys.
pub fn call(pages: &[Incident], now: Timestamp) -> String {
    let one = |i: &Incident| {
        format!(
            "{}, {}: {}. Open for {}.",
            i.service,
            i.severity.as_str(),
            cut(&i.summary, SUMMARY),
            age(now.duration_since(i.created_at))
        )
    };
    let mut said = match pages {
        [] => "Nothing is waiting any more.".to_owned(),
        [single] => format!("Incident {}, {}", single.id, one(single)),
        many => {
            let mut services: Vec<(&str, usize)> = Vec::new();
            for i in many {
                match services.iter_mut().find(|(s, _)| *s == i.service) {
                    Some((_, n)) => *n += 1,
                    None => services.push((&i.service, 1)),
                }
            }
            let on: Vec<String> =
                services.iter().map(|(s, n)| format!("{} on {s}", number_word(*n))).collect();
            let count = number_word(many.len());
            let count = format!("{}{}", count[..1].to_uppercase(), &count[1..]);
            let mut said = format!("{count} incidents, {}.", on.join(", "));
            for i in many.iter().take(NAMED) {
                said.push_str(&format!(" Incident {}, {}", i.id, one(i)));
            }
            if many.len() > NAMED {
                said.push_str(&format!(" And {} more.", many.len() - NAMED));
            }
            said
        }
    };
    if pages.len() > 1 {
        said.push_str(" Press 4 to acknowledge all, 6 to escalate all, or 9 to hear this again.");
    } else if !pages.is_empty() {
        said.push(' ');
        said.push_str(KEYS);
    }
    said
}

/// What a call says after a key: `done` incidents it acted on, `refused` why the others not.
pub fn after_key(verb: &str, done: usize, refused: &[String]) -> String {
    let mut said = match done {
        0 => String::new(),
        1 => format!("{verb}."),
        n => format!("{verb} {} incidents.", number_word(n)),
    };
    for why in refused {
        said.push_str(&format!(" {why}."));
    }
    said.push_str(" Goodbye.");
    said.trim_start().to_owned()
}

/// What a call to the hotline says.
pub fn hotline(service: &str, incident: i64, paged: &[String]) -> String {
    let who = match paged {
        [] => "Nobody is on call for it right now; the team will see it on the console.".to_owned(),
        [one] => format!("{one} is being paged now."),
        many => format!(
            "{} and {} are being paged now.",
            many[..many.len() - 1].join(", "),
            many[many.len() - 1]
        ),
    };
    format!("This is Reveille, for {service}. Your call opened incident {incident}. {who} Goodbye.")
}

/// What a test call says.
pub fn test_call(user: &str) -> String {
    format!("This is a test call from Reveille for {user}. Press 4 to confirm that you heard it.")
}

/// GSM-7 (3GPP TS 23.038's basic set) of `text`: what it cannot carry becomes `?`, brackets
/// become parentheses (GSM's brackets take two characters each).
pub fn gsm7(text: &str) -> String {
    const BASIC: &str = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    text.chars()
        .map(|c| match c {
            '[' | '{' => '(',
            ']' | '}' => ')',
            '\n' | '\r' | '\t' => ' ',
            '–' | '—' => '-',
            '’' | '‘' => '\'',
            '“' | '”' => '"',
            c if BASIC.contains(c) => c,
            _ => '?',
        })
        .collect()
}

/// The text for `pages`: one SMS, with how to answer.
pub fn text(pages: &[Incident]) -> String {
    let reply = match pages {
        [one] => format!(" Reply 4 {0} to ack, 6 {0} to escalate", one.id),
        _ => " Reply 4 <n> to ack, 6 <n> to escalate".to_owned(),
    };
    let head = match pages {
        [one] => format!(
            "Reveille #{} {} {}: ",
            one.id,
            one.service,
            one.severity.as_str().to_uppercase()
        ),
        many => format!("Reveille: {} incidents. ", many.len()),
    };
    let room = SMS.saturating_sub(gsm7(&head).chars().count() + reply.chars().count());
    let body = match pages {
        [one] => gsm7(&cut(&one.summary, room)),
        many => {
            let listed: Vec<String> = many
                .iter()
                .map(|i| format!("#{} {}: {}", i.id, i.service, gsm7(&i.summary)))
                .collect();
            gsm7(&cut(&listed.join("; "), room))
        }
    };
    let text = format!("{}{body}{reply}", gsm7(&head));
    text.chars().take(SMS).collect()
}

#[cfg(test)]
mod tests;
