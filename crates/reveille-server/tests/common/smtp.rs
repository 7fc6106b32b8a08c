//! A real SMTP server on loopback for the tests (aiosmtpd, `tests/smtp_server.py`): STARTTLS
//! and AUTH required, what it accepts read back from its Maildir, refusals switched on and off.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const PASSWORD: &str = "s3cret-smtp-password";

pub struct Smtp {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
    python: PathBuf,
    /// The server's self-signed certificate: the `ca_file` to trust.
    pub cert: String,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_smtp(python: PathBuf) -> Smtp {
    use std::io::BufRead;
    let maildir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    let tls = maildir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    std::fs::write(tls.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(tls.join("key.pem"), key_pem).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp_server.py");
    let mut child = Command::new(&python)
        .arg(script)
        .arg(maildir.path().join("mail"))
        .arg(tls.join("cert.pem"))
        .arg(tls.join("key.pem"))
        .args(["reveille", PASSWORD])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port =
        line.trim().strip_prefix("ready ").expect("the SMTP server is ready").parse().unwrap();
    Smtp { child, port, maildir, python, cert: cert_pem }
}

impl Smtp {
    /// Answers every recipient with `flag`'s refusal (`defer`: 451, `reject`: 550), or not.
    pub fn refuse(&self, flag: &str, on: bool) {
        let path = self.maildir.path().join(format!("mail.{flag}"));
        if on {
            std::fs::write(path, "").unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }

    /// How many recipients were refused so far.
    pub fn refused(&self) -> usize {
        let log = std::fs::read_to_string(self.maildir.path().join("mail.refused"));
        log.map(|l| l.lines().count()).unwrap_or(0)
    }

    /// Every stored message, oldest first, parsed by Python's own email package.
    pub fn mails(&self) -> Vec<Value> {
        let script = r#"
import email, email.policy, json, os, sys
new = os.path.join(sys.argv[1], "new")
names = sorted(os.listdir(new), key=lambda n: os.stat(os.path.join(new, n)).st_mtime_ns) if os.path.isdir(new) else []
out = []
for name in names:
    with open(os.path.join(new, name), "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    out.append({"subject": m["subject"], "to": m["to"], "from": m["from"], "message_id": m["message-id"],
                "in_reply_to": m["in-reply-to"], "body": m.get_body().get_content()})
print(json.dumps(out))
"#;
        let out = Command::new(&self.python)
            .args(["-c", script])
            .arg(self.maildir.path().join("mail"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    }

    /// Waits until `n` messages are stored; returns them all.
    pub async fn until(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} mails: {mails:#?}",
                mails.len()
            );
            // Polling another process's mailbox: there is nothing to wait on but its files.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
