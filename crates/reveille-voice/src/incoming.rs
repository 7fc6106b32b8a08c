//! A call to the line (the hotline): who is calling, and answering or refusing it.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::call::Call;
use crate::dial::follow;
use crate::line::Inner;
use crate::{Error, Result, sdp};

/// A call to the line, not answered yet.
pub struct Incoming {
    inner: Arc<Inner>,
    dialog: InviteDialog,
    offer: Vec<u8>,
    caller: String,
    keys: (mpsc::Sender<char>, mpsc::Receiver<char>),
    ended: CancellationToken,
}

impl Incoming {
    pub(crate) fn new(
        inner: &Arc<Inner>,
        mut tx: Transaction,
    ) -> std::result::Result<Self, Box<(Transaction, String)>> {
        let (state_tx, states) = inner.dialogs.new_dialog_state_channel();
        let contact = format!("sip:{}@{}", inner.config.user, inner.contact);
        let contact = rsipstack::sip::Uri::try_from(contact.as_str()).ok();
        let dialog = match inner.dialogs.get_or_create_server_invite(&tx, state_tx, None, contact) {
            Ok(dialog) => dialog,
            Err(e) => return Err(Box::new((tx, e.to_string()))),
        };
        let headers: Vec<(String, String)> = tx
            .original
            .headers
            .iter()
            .map(|h| (h.name().to_ascii_lowercase(), h.value().to_owned()))
            .collect();
        let asserted = headers.iter().find(|(n, _)| n == "p-asserted-identity");
        let from = headers.iter().find(|(n, _)| n == "from" || n == "f");
        let caller = asserted.or(from).map(|(_, v)| caller_of(v)).unwrap_or_default();
        let offer = tx.original.body.clone();
        let keys = mpsc::channel(16);
        let ended = CancellationToken::new();
        tokio::spawn(follow(states, None, Box::new(|| {}), keys.0.clone(), ended.clone()));
        let mut handling = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = handling.handle(&mut tx).await {
                tracing::debug!(error = %e, "a call to the line ended in error");
            }
        });
        Ok(Self { inner: inner.clone(), dialog, offer, caller, keys, ended })
    }

    /// The caller's number (or SIP user), as the network says it.
    pub fn caller(&self) -> &str {
        &self.caller
    }

    /// Answers with audio in the caller's codec; an offer without usable audio is refused
    /// (488) and is the error.
    pub async fn answer(self) -> Result<Call> {
        let media = match sdp::read(&String::from_utf8_lossy(&self.offer)) {
            Ok(media) => media,
            Err(why) => {
                let _ = self.dialog.reject(Some(StatusCode::NotAcceptableHere), None);
                return Err(Error::Sip(format!("the caller's audio cannot be used: {why}")));
            }
        };
        let socket = Arc::new(UdpSocket::bind((self.inner.bind_ip, 0)).await?);
        let local = SocketAddr::new(self.inner.media_ip, socket.local_addr()?.port());
        let answer = sdp::answer(local, 1, &media);
        let content = vec![Header::ContentType("application/sdp".into())];
        self.dialog.accept(Some(content), Some(answer.into_bytes()))?;
        let (keys_tx, keys) = self.keys;
        Ok(Call::start(&self.inner, self.dialog, socket, media, keys_tx, keys, self.ended))
    }

    /// Refuses the call with `status` (486 Busy Here when nobody takes calls).
    pub async fn refuse(self, status: StatusCode) {
        if let Err(e) = self.dialog.reject(Some(status), None) {
            tracing::debug!(error = %e, "a call to the line could not be refused");
        }
        self.inner.dialogs.remove_dialog(&self.dialog.id());
    }
}

/// The user part of the first URI in a From or P-Asserted-Identity value:
/// `"Bob" <sip:+15551234567@pbx;user=phone>;tag=1` → `+15551234567`.
pub fn caller_of(value: &str) -> String {
    let uri = match (value.find('<'), value.find('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value.split(';').next().unwrap_or(value),
    };
    let rest = ["sips:", "sip:", "tel:"].iter().find_map(|s| uri.trim().strip_prefix(s));
    let Some(rest) = rest else { return String::new() };
    let user = rest.split('@').next().unwrap_or(rest);
    user.split(';').next().unwrap_or(user).to_owned()
}

#[cfg(test)]
mod tests {
    use super::caller_of;

    #[test]
    fn the_caller_is_the_user_of_the_first_uri() {
        assert_eq!(caller_of(r#""Bob" <sip:+15551234567@pbx;user=phone>;tag=1"#), "+15551234567");
        assert_eq!(caller_of("<tel:+4930123;phone-context=x>"), "+4930123");
        assert_eq!(caller_of("sip:alice@example.org;tag=9"), "alice");
        assert_eq!(caller_of("<http://example.org>"), "");
        assert_eq!(caller_of(""), "");
    }
}
