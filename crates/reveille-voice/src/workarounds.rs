//! Two fixes around rsipstack 0.7.14, each to drop once upstream has its own:
//!
//! 1. **An outbound proxy for every request.** rsipstack routes a CANCEL by its Request-URI and
//!    ignores the INVITE's destination, so a CANCEL for `sip:+49…@pbx.example.org` is looked up
//!    in DNS instead of going where the INVITE went, and an unanswered call ends 32 s late with
//!    a 408. Every request goes to the configured server, which is what a phone on a PBX does.
//! 2. **RFC 7616's spelling of SHA-256.** rsipstack parses only `algorithm=SHA256`; servers
//!    (Kamailio with `algorithm "SHA-256"`, Asterisk 20+) send `SHA-256`, and the call failed at
//!    once. Challenges are respelt on the way in and our answers back on the way out; the digest
//!    itself rsipstack computes correctly.

use rsipstack::sip::{HasHeaders, Header, SipMessage};
use rsipstack::transaction::endpoint::{MessageInspector, TargetLocator};
use rsipstack::transport::SipAddr;

/// Sends every request to the SIP server.
pub struct OutboundProxy(pub SipAddr);

#[async_trait::async_trait]
impl TargetLocator for OutboundProxy {
    async fn locate(&self, _uri: &rsipstack::sip::Uri) -> rsipstack::Result<SipAddr> {
        Ok(self.0.clone())
    }
}

/// Respells digest algorithms between RFC 7616 and rsipstack.
pub struct Rfc7616Spelling;

const SPELLINGS: [(&str, &str); 2] =
    [("algorithm=SHA-256", "algorithm=SHA256"), ("algorithm=SHA-512", "algorithm=SHA512")];

fn respell(value: &str, rfc_to_ours: bool) -> String {
    SPELLINGS.iter().fold(value.to_owned(), |v, (rfc, ours)| {
        if rfc_to_ours { v.replace(rfc, ours) } else { v.replace(ours, rfc) }
    })
}

impl MessageInspector for Rfc7616Spelling {
    fn before_send(&self, mut msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        for header in msg.headers_mut().iter_mut() {
            match header {
                Header::Authorization(v) => *v = respell(v.value(), false).into(),
                Header::ProxyAuthorization(v) => *v = respell(v.value(), false).into(),
                _ => {}
            }
        }
        msg
    }

    fn after_received(&self, mut msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        for header in msg.headers_mut().iter_mut() {
            match header {
                Header::WwwAuthenticate(v) => *v = respell(v.value(), true).into(),
                Header::ProxyAuthenticate(v) => *v = respell(v.value(), true).into(),
                _ => {}
            }
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spellings_go_both_ways_and_leave_md5_alone() {
        let challenge = r#"Digest realm="x", nonce="n", algorithm=SHA-256, qop="auth""#;
        let ours = super::respell(challenge, true);
        assert!(ours.contains("algorithm=SHA256,"), "{ours}");
        assert_eq!(super::respell(&ours, false), challenge);
        let md5 = r#"Digest realm="x", algorithm=MD5"#;
        assert_eq!(super::respell(md5, true), md5);
    }
}
