//! RTP as a call needs it (RFC 3550): our audio out in 20 ms packets, and the keys pressed on
//! the far end's keypad read from its RFC 4733 telephone-events.

/// Samples in one 20 ms packet at 8 kHz.
pub const FRAME: usize = 160;

/// Numbers our packets: one stream per call, its sequence and timestamp running on across
/// everything said (silence included), the marker bit on the first.
pub struct Stream {
    ssrc: u32,
    seq: u16,
    ts: u32,
    payload_type: u8,
    talkspurt: bool,
}

impl Stream {
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        Self { ssrc, seq: ssrc as u16, ts: ssrc.rotate_left(16), payload_type, talkspurt: true }
    }

    /// One packet carrying `payload` (G.711: a byte per sample).
    pub fn packet(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut packet = Vec::with_capacity(12 + payload.len());
        packet.push(0x80);
        let marker = if std::mem::take(&mut self.talkspurt) { 0x80 } else { 0 };
        packet.push(marker | self.payload_type);
        packet.extend_from_slice(&self.seq.to_be_bytes());
        packet.extend_from_slice(&self.ts.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        packet.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(payload.len() as u32);
        packet
    }
}

/// The payload type, timestamp and payload of an RTP packet; None if it is not one.
fn parse(packet: &[u8]) -> Option<(u8, u32, &[u8])> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(packet[0] & 0x0F);
    let mut start = 12 + 4 * csrc;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    let payload = packet.get(start..end)?;
    let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    Some((packet[1] & 0x7F, ts, payload))
}

/// Reads keys from telephone-events. One press is many packets with one timestamp; it is heard
/// at its first packet (so a key acts at once, not when the finger lifts), and only once.
#[derive(Default)]
pub struct Keypad {
    last: Option<u32>,
}

impl Keypad {
    /// The key a packet starts, if it starts one.
    pub fn heard(&mut self, packet: &[u8], events: Option<u8>) -> Option<char> {
        let (pt, ts, payload) = parse(packet)?;
        if Some(pt) != events || payload.len() < 4 || self.last == Some(ts) {
            return None;
        }
        self.last = Some(ts);
        key(payload[0])
    }
}

/// The key of an RFC 4733 DTMF event code.
pub fn key(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ts: u32, code: u8, end: bool) -> Vec<u8> {
        let mut p = vec![0x80, 101, 0, 1];
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[1, 2, 3, 4, code, if end { 0x80 } else { 0 }, 0, 160]);
        p
    }

    #[test]
    fn a_press_is_heard_once_at_its_first_packet() {
        let mut keypad = Keypad::default();
        assert_eq!(keypad.heard(&event(1000, 4, false), Some(101)), Some('4'));
        for end in [false, true, true, true] {
            assert_eq!(keypad.heard(&event(1000, 4, end), Some(101)), None);
        }
        assert_eq!(keypad.heard(&event(9000, 11, false), Some(101)), Some('#'));
        assert_eq!(keypad.heard(&event(9800, 6, true), None), None, "no events were agreed");
    }

    #[test]
    fn audio_and_garbage_are_not_keys() {
        let mut keypad = Keypad::default();
        let mut stream = Stream::new(7, 0);
        assert_eq!(keypad.heard(&stream.packet(&[0xFF; 160]), Some(101)), None);
        for junk in
            [&[][..], &[0x80, 101, 0], &[0x00; 20], &[0xBF, 101, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
        {
            assert_eq!(keypad.heard(junk, Some(101)), None);
        }
        assert_eq!(keypad.heard(&event(5, 200, false), Some(101)), None, "not a DTMF code");
    }

    #[test]
    fn packets_run_on_and_the_first_is_marked() {
        let mut stream = Stream::new(0x0102_0304, 8);
        let first = stream.packet(&[0xD5; FRAME]);
        let second = stream.packet(&[0xD5; FRAME]);
        assert_eq!(first[1], 0x80 | 8, "marked");
        assert_eq!(second[1], 8);
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(seq(&second), seq(&first).wrapping_add(1));
        assert_eq!(ts(&second), ts(&first).wrapping_add(FRAME as u32));
        assert_eq!(parse(&second).map(|(pt, _, p)| (pt, p.len())), Some((8, FRAME)));
    }
}
