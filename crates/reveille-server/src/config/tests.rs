use std::path::Path;

use jiff::SignedDuration;
use reveille_core::notify::{Channel, NotifyRules, Step};

use super::*;

fn dir_with_runbook() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/payments.md"), "# Payments\n").unwrap();
    dir
}

/// The example as `reveille default-config` prints it, with its runbook line switched on.
fn example() -> String {
    EXAMPLE.replace("# runbook = \"runbooks/payments.md\"", "runbook = \"runbooks/payments.md\"")
}

fn load(text: &str, dir: &Path, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Settings::from_text(text, &dir.join("reveille.toml"), vars)
}

#[test]
fn the_example_is_valid_and_resolves_paths_against_the_config_file() {
    let dir = dir_with_runbook();
    let settings = load(&example(), dir.path(), &[]).unwrap();
    assert_eq!(settings.database_path(), dir.path().join("reveille.db"));
    let payments = settings.service("payments").unwrap();
    let directory = crate::oncall::directory::Directory::build(&settings, &[]);
    let rules = directory.service("payments").unwrap();
    assert_eq!(rules.policy.levels.len(), 2, "the example's payments policy");
    assert_eq!(
        rules.runbook_url.as_deref(),
        Some("http://127.0.0.1:8080/api/v1/runbooks/payments")
    );
    assert_eq!(settings.runbook_file(payments).unwrap(), dir.path().join("runbooks/payments.md"));
    assert!(directory.schedules.contains_key("primary"));
}

#[test]
fn mistakes_are_named_with_file_line_and_key() {
    let dir = dir_with_runbook();
    let text = "[[users]]\nname = \"alice\"\n\n[[services]]\nname = \"db\"\npage = [\"alice\", \"carl\"]\nurgency = \"loud\"\n";
    let err = load(text, dir.path(), &[]).unwrap_err();
    let shown: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    let file = dir.path().join("reveille.toml").display().to_string();
    assert_eq!(
        shown,
        [
            format!("{file}:6: services[0].page[1]: unknown user \"carl\" (not in [[users]])"),
            format!(
                "{file}:7: services[0].urgency: \"loud\" must be \"severity\", \"high\" or \"low\""
            ),
        ]
    );
}

#[test]
fn unknown_keys_and_wrong_types_name_their_line() {
    let dir = dir_with_runbook();
    let err = load("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", dir.path(), &[]).unwrap_err();
    assert_eq!(err.0[0].line, Some(3), "{err}");
    assert!(err.0[0].message.contains("lisen"), "{err}");
    let err = load("[ingest]\n\nrate_per_minute = \"many\"\n", dir.path(), &[]).unwrap_err();
    assert_eq!(err.0[0].line, Some(3), "{err}");
}

#[test]
fn a_missing_runbook_file_and_a_bad_address_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&example(), dir.path(), &[("REVEILLE_SERVER_LISTEN", "nowhere")]).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["server.listen", "services[0].runbook"]);
}

#[test]
fn every_setting_can_be_overridden_from_the_environment() {
    let dir = dir_with_runbook();
    let settings = load(
        EXAMPLE,
        dir.path(),
        &[
            ("REVEILLE_SERVER_LISTEN", "0.0.0.0:9999"),
            ("REVEILLE_SERVER_HEARTBEAT_SECONDS", "5"),
            ("REVEILLE_DATABASE_URL", "sqlite://other.db"),
            ("REVEILLE_INGEST_RATE_PER_MINUTE", "7"),
            ("REVEILLE_USERS", "[{name = \"zed\"}]"),
            ("REVEILLE_SERVICES", "[{name = \"ops\", page = [\"zed\"]}]"),
            ("REVEILLE_SCHEDULES", "[]"),
            ("REVEILLE_POLICIES", "[]"),
            ("REVEILLE_HEARTBEATS", "[]"),
            ("REVEILLE_ESCALATION_DEAF_AFTER_SECONDS", "0"),
            ("REVEILLE_TOKEN", "client-side, ignored"),
        ],
    )
    .unwrap();
    assert_eq!(settings.server.listen, "0.0.0.0:9999");
    assert_eq!(settings.server.heartbeat_seconds, 5);
    assert_eq!(settings.database_path(), dir.path().join("other.db"));
    assert_eq!(settings.ingest.rate_per_minute, 7);
    assert_eq!(settings.users[0].name, "zed");
    assert_eq!(settings.services[0].page, ["zed"]);
    assert_eq!(settings.escalation.deaf_after_seconds, 0);
    assert!(settings.schedules.is_empty() && settings.policies.is_empty());
    let err = load(&example(), dir.path(), &[("REVEILLE_SERVR_LISTEN", "x")]).unwrap_err();
    assert_eq!(err.0[0].origin, "environment variable REVEILLE_SERVR_LISTEN");
}

#[test]
fn limits_and_retention_are_checked_and_overridable() {
    let dir = dir_with_runbook();
    let vars = [
        ("REVEILLE_RETENTION_DAYS", "7"),
        ("REVEILLE_SERVER_MAX_CONNECTIONS", "500"),
        ("REVEILLE_SERVER_MAX_STREAMS_PER_USER", "4"),
    ];
    let settings = load(EXAMPLE, dir.path(), &vars).unwrap();
    assert_eq!(settings.retention.days, 7);
    assert_eq!((settings.server.max_connections, settings.server.max_streams_per_user), (500, 4));
    let bad = [
        ("REVEILLE_SERVER_IDLE_TIMEOUT_SECONDS", "0"),
        ("REVEILLE_RETENTION_DAYS", "1"),
        ("REVEILLE_PHONE_ACK_LINK_HOURS", "48"),
    ];
    let err = load(EXAMPLE, dir.path(), &bad).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["server.idle_timeout_seconds", "retention.days"], "{err}");
}

#[test]
fn the_database_url_chooses_the_backend_and_its_password_never_shows() {
    let dir = dir_with_runbook();
    let url = "postgres://reveille:hunter2@db.example:5432/reveille";
    let settings = load(EXAMPLE, dir.path(), &[("REVEILLE_DATABASE_URL", url)]).unwrap();
    assert_eq!(settings.backend(), Some(super::Backend::Postgres(url.into())));
    assert_eq!(settings.link_key_path(), dir.path().join("reveille.link-key"));
    assert!(!format!("{settings:?}").contains("hunter2"));
    let sqlite = load(EXAMPLE, dir.path(), &[]).unwrap();
    assert_eq!(sqlite.backend(), Some(super::Backend::Sqlite(dir.path().join("reveille.db"))));
    assert_eq!(sqlite.link_key_path(), dir.path().join("reveille.db.link-key"));
    let err = load(EXAMPLE, dir.path(), &[("REVEILLE_DATABASE_URL", "mysql://x")]).unwrap_err();
    assert_eq!(err.0[0].key, "database.url", "{err}");
}

#[test]
fn the_printed_example_works_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    load(EXAMPLE, dir.path(), &[]).unwrap();
}

#[test]
fn schedule_and_policy_mistakes_name_their_line() {
    let dir = dir_with_runbook();
    let text = r#"
[[users]]
name = "alice"

[[schedules]]
name = "primary"
time_zone = "Mars/Olympus"

[[schedules.layers]]
members = []
start = "2026-01-05T09:00"
shift = "1 fortnight"
hours = "09:00-09:00"
days = ["mon", "caturday"]

[[schedules.overrides]]
user = "mallory"
start = "2026-12-24T09:00"
end = "2026-12-23T09:00"

[[policies]]
name = "ops"
[[policies.levels]]
schedules = ["secondary"]
delay_minutes = 0

[[services]]
name = "db"
policy = "nope"
"#;
    let err = load(text, dir.path(), &[]).unwrap_err();
    let found: Vec<(Option<usize>, &str)> =
        err.0.iter().map(|p| (p.line, p.key.as_str())).collect();
    assert_eq!(
        found,
        [
            (Some(7), "schedules[0].time_zone"),
            (Some(10), "schedules[0].layers[0].members"),
            (Some(12), "schedules[0].layers[0].shift"),
            (Some(13), "schedules[0].layers[0].hours"),
            (Some(14), "schedules[0].layers[0].days[1]"),
            (Some(17), "schedules[0].overrides[0].user"),
            (Some(19), "schedules[0].overrides[0].end"),
            (Some(24), "policies[0].levels[0].schedules[0]"),
            (Some(25), "policies[0].levels[0].delay_minutes"),
            (Some(29), "services[0].policy"),
        ],
        "{err}"
    );
    assert!(err.to_string().contains("an empty rotation"), "{err}");
}

#[test]
fn a_type_error_names_its_key() {
    let dir = dir_with_runbook();
    let err = load("[ingest]\nrate_per_minute = \"many\"\n", dir.path(), &[]).unwrap_err();
    assert_eq!(
        (err.0[0].line, err.0[0].key.as_str()),
        (Some(2), "ingest.rate_per_minute"),
        "{err}"
    );
}

#[test]
fn ntfy_topics_must_be_valid_unreserved_and_taken_once() {
    let dir = dir_with_runbook();
    let text = "[[users]]\nname = \"alice\"\n\n[[services]]\nname = \"a\"\npage = [\"alice\"]\nntfy_topics = [\"ok\", \"api\", \"no spaces\"]\n\n[[services]]\nname = \"b\"\npage = [\"alice\"]\nntfy_topics = [\"ok\"]\n";
    let err = load(text, dir.path(), &[]).unwrap_err();
    let keys: Vec<(&str, Option<usize>)> = err.0.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        keys,
        [
            ("services[0].ntfy_topics[1]", Some(7)),
            ("services[0].ntfy_topics[2]", Some(7)),
            ("services[1].ntfy_topics[0]", Some(12)),
        ]
    );
    assert!(err.0[2].message.contains("two services"), "{err}");
}

#[test]
fn webhook_mistakes_are_named() {
    let dir = dir_with_runbook();
    std::fs::write(dir.path().join("short.secret"), "too short").unwrap();
    let text = "[[users]]\nname = \"alice\"\n\n[[services]]\nname = \"a\"\npage = [\"alice\"]\n\n\
                [[webhooks]]\nname = \"w\"\nurl = \"ftp://x\"\nsecret_file = \"short.secret\"\nservices = [\"nope\"]\n\n\
                [[webhooks]]\nname = \"w\"\nurl = \"https://x.example/h\"\nsecret_file = \"missing.secret\"\n";
    let err = load(text, dir.path(), &[]).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "webhooks[0].url",
            "webhooks[0].secret_file",
            "webhooks[0].services[0]",
            "webhooks[1].name",
            "webhooks[1].secret_file"
        ]
    );
    assert!(err.0[1].message.contains("at least 16"), "{err}");
}

#[test]
fn notification_rules_and_email_are_checked_and_default_to_every_channel() {
    let dir = dir_with_runbook();
    let email = "[email]\nhost = \"127.0.0.1\"\nfrom = \"Reveille <pager@example.com>\"\n\n";
    let people = "[[users]]\nname = \"alice\"\nemail = \"alice@example.com\"\ntime_zone = \"Europe/Berlin\"\n\
                  [users.notify]\nhigh = [\"email after 2m\"]\nquiet_hours = \"22:00-07:00\"\n\n\
                  [[users]]\nname = \"bob\"\n\n[[services]]\nname = \"a\"\npage = [\"alice\"]\n";
    let settings = load(&format!("{email}{people}"), dir.path(), &[]).unwrap();
    let alice = settings.notify_rules("alice");
    let step =
        |minutes| Step { channel: Channel::Email, after: SignedDuration::from_mins(minutes) };
    assert_eq!((alice.high.as_slice(), alice.low.as_slice()), (&[step(2)][..], &[step(0)][..]));
    assert!(alice.quiet.is_some());
    assert_eq!(settings.notify_rules("bob"), NotifyRules::default(), "bob has no address");

    let bad = "[email]\nhost = \"h\"\nfrom = \"nobody\"\nsecurity = \"ssl\"\n\n\
               [[users]]\nname = \"alice\"\nemail = \"not an address\"\ntime_zone = \"Mars/Olympus\"\n\
               [users.notify]\nhigh = [\"pigeon\", \"email after soon\"]\nquiet_hours = \"late\"\n\n\
               [[users]]\nname = \"bob\"\n[users.notify]\nlow = [\"email\"]\n\n\
               [[services]]\nname = \"a\"\npage = [\"alice\"]\n";
    let err = load(bad, dir.path(), &[]).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "email.from",
            "email.security",
            "users[0].email",
            "users[0].time_zone",
            "users[0].notify.high[0]",
            "users[0].notify.high[1]",
            "users[0].notify.quiet_hours",
            "users[1].notify.low[0]",
        ]
    );
    assert!(err.0[7].message.contains("cannot reach bob"), "{err}");
}
