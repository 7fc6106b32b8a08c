//! The little SDP a call needs (RFC 4566, RFC 3264): our offer of PCMU, PCMA and
//! telephone-events, the far end's answer (or offer) read for where to send audio, in which
//! codec, and which payload type carries its keypad.

use std::net::{IpAddr, SocketAddr};

pub const PCMU: u8 = 0;
pub const PCMA: u8 = 8;
/// The payload type we offer for RFC 4733 telephone-events.
pub const EVENTS: u8 = 101;

/// A G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Self::Pcmu => PCMU,
            Self::Pcma => PCMA,
        }
    }
}

/// What the far end's SDP says about its audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Where it wants our RTP.
    pub peer: SocketAddr,
    pub codec: Codec,
    /// Its payload type for telephone-events, if it sends keys that way.
    pub events: Option<u8>,
}

fn ip_line(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => format!("IN IP4 {ip}"),
        IpAddr::V6(ip) => format!("IN IP6 {ip}"),
    }
}

fn describe(local: SocketAddr, session: u64, formats: &str, attributes: &str) -> String {
    let ip = ip_line(local.ip());
    format!(
        "v=0\r\no=reveille {session} {session} {ip}\r\ns=Reveille\r\nc={ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {formats}\r\n{attributes}a=ptime:20\r\na=sendrecv\r\n",
        local.port()
    )
}

/// Our offer: audio to `local`, PCMU or PCMA, telephone-events as [`EVENTS`].
pub fn offer(local: SocketAddr, session: u64) -> String {
    let attributes = format!(
        "a=rtpmap:{PCMU} PCMU/8000\r\na=rtpmap:{PCMA} PCMA/8000\r\n\
         a=rtpmap:{EVENTS} telephone-event/8000\r\na=fmtp:{EVENTS} 0-15\r\n"
    );
    describe(local, session, &format!("{PCMU} {PCMA} {EVENTS}"), &attributes)
}

/// Our answer to an offer read as `theirs`: its codec, and its telephone-event type if any.
pub fn answer(local: SocketAddr, session: u64, theirs: &Media) -> String {
    let pt = theirs.codec.payload_type();
    let name = match theirs.codec {
        Codec::Pcmu => "PCMU",
        Codec::Pcma => "PCMA",
    };
    let mut formats = pt.to_string();
    let mut attributes = format!("a=rtpmap:{pt} {name}/8000\r\n");
    if let Some(events) = theirs.events {
        formats.push_str(&format!(" {events}"));
        attributes.push_str(&format!(
            "a=rtpmap:{events} telephone-event/8000\r\na=fmtp:{events} 0-15\r\n"
        ));
    }
    describe(local, session, &formats, &attributes)
}

/// Reads the far end's SDP; the error says what is missing, for the timeline.
pub fn read(sdp: &str) -> Result<Media, String> {
    let (mut session_ip, mut media_ip) = (None, None);
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut events = None;
    for line in sdp.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=") {
            let ip =
                connection(c).ok_or_else(|| format!("a connection line it cannot use: {c:?}"))?;
            if audio.is_some() { media_ip = Some(ip) } else { session_ip = Some(ip) }
        } else if let Some(m) = line.strip_prefix("m=") {
            if audio.is_some() {
                break; // a second stream (video, say) is none of ours
            }
            let mut fields = m.split_whitespace();
            if fields.next() != Some("audio") {
                continue;
            }
            let port = fields.next().and_then(|p| p.parse::<u16>().ok());
            let port = port.ok_or_else(|| format!("an audio line without a port: {m:?}"))?;
            fields.next(); // RTP/AVP
            audio = Some((port, fields.filter_map(|f| f.parse().ok()).collect()));
        } else if let Some(map) = line.strip_prefix("a=rtpmap:")
            && audio.is_some()
            && let Some((pt, encoding)) = map.split_once(' ')
            && encoding.to_ascii_lowercase().starts_with("telephone-event/8000")
        {
            events = pt.parse().ok();
        }
    }
    let (port, formats) = audio.ok_or("no audio stream (m=audio)")?;
    if port == 0 {
        return Err("the audio stream was refused (port 0)".into());
    }
    let ip = media_ip.or(session_ip).ok_or("no connection address (c=)")?;
    let codec = formats
        .iter()
        .find_map(|&pt| match pt {
            PCMU => Some(Codec::Pcmu),
            PCMA => Some(Codec::Pcma),
            _ => None,
        })
        .ok_or_else(|| format!("neither PCMU nor PCMA among its formats {formats:?}"))?;
    let events = events.filter(|pt| formats.contains(pt));
    Ok(Media { peer: SocketAddr::new(ip, port), codec, events })
}

fn connection(c: &str) -> Option<IpAddr> {
    let mut fields = c.split_whitespace();
    let (net, kind, address) = (fields.next()?, fields.next()?, fields.next()?);
    let ip: IpAddr = address.split('/').next()?.parse().ok()?;
    let matches = match ip {
        IpAddr::V4(_) => kind == "IP4",
        IpAddr::V6(_) => kind == "IP6",
    };
    (net == "IN" && matches).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "v=0\r\no=phone 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 6000 RTP/AVP 8 0 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n";

    #[test]
    fn an_answer_gives_the_address_the_first_g711_law_and_the_keypad() {
        let media = read(PHONE).unwrap();
        assert_eq!(media.peer, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(media.codec, Codec::Pcma, "the phone's first preference");
        assert_eq!(media.events, Some(96));
    }

    #[test]
    fn our_offer_is_read_back_as_it_was_meant() {
        let local: SocketAddr = "[::1]:40000".parse().unwrap();
        let media = read(&offer(local, 7)).unwrap();
        assert_eq!((media.peer, media.codec, media.events), (local, Codec::Pcmu, Some(EVENTS)));
        let answered = read(&answer("127.0.0.1:5000".parse().unwrap(), 7, &media)).unwrap();
        assert_eq!(answered.events, Some(EVENTS));
    }

    #[test]
    fn a_media_level_address_wins_over_the_session_one() {
        let sdp = PHONE.replace(
            "m=audio 6000 RTP/AVP 8 0 96\r\n",
            "m=audio 6000 RTP/AVP 8 0 96\r\nc=IN IP4 10.0.0.9\r\n",
        );
        assert_eq!(read(&sdp).unwrap().peer, "10.0.0.9:6000".parse().unwrap());
    }

    #[test]
    fn garbled_or_unusable_sdp_says_what_is_wrong() {
        let cases = [
            ("", "no audio stream"),
            ("v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5 RTP/AVP 31\r\n", "no audio stream"),
            ("m=audio 6000 RTP/AVP 0\r\n", "no connection address"),
            ("c=IN IP4 not-an-ip\r\nm=audio 6000 RTP/AVP 0\r\n", "connection line"),
            ("c=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n", "refused (port 0)"),
            ("c=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 9 18\r\n", "neither PCMU nor PCMA"),
            ("c=IN IP4 127.0.0.1\r\nm=audio many RTP/AVP 0\r\n", "without a port"),
            ("\u{0}\u{1}garbage\r\n\r\n=\r\n", "no audio stream"),
        ];
        for (sdp, why) in cases {
            let error = read(sdp).unwrap_err();
            assert!(error.contains(why), "{sdp:?}: {error}");
        }
    }

    #[test]
    fn telephone_events_not_among_the_formats_are_not_used() {
        let sdp = PHONE.replace("RTP/AVP 8 0 96", "RTP/AVP 8 0");
        assert_eq!(read(&sdp).unwrap().events, None);
    }
}
