//! A small Server-Sent Events parser (the framing of every Reveille feed): bytes in, complete
//! events out. Pure code, so every client shares it.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// Accumulates bytes and yields events as their blank line arrives.
#[derive(Default)]
pub struct Parser {
    buffer: Vec<u8>,
    current: SseEvent,
    has_data: bool,
}

impl Parser {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data {
                    let mut event = std::mem::take(&mut self.current);
                    if event.event.is_empty() {
                        event.event = "message".into();
                    }
                    out.push(event);
                }
                self.current = SseEvent::default();
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.current.id = Some(value.to_owned()),
                "event" => self.current.event = value.to_owned(),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut p = Parser::default();
        assert!(p.push(b"id: 7\nevent: pa").is_empty());
        let events = p.push(
            b"ge\ndata: {\"a\":\ndata: 1}\r\n\r\n: keepalive\n\nevent: heartbeat\ndata: x\n\n",
        );
        assert_eq!(
            events,
            [
                SseEvent { id: Some("7".into()), event: "page".into(), data: "{\"a\":\n1}".into() },
                SseEvent { id: None, event: "heartbeat".into(), data: "x".into() },
            ]
        );
    }
}
