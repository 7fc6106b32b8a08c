//! G.711 encoding of 16-bit samples: µ-law (PCMU) and A-law (PCMA), the Sun algorithm on the
//! sample rounded to 14 or 13 bits — byte for byte what `sox -D -e mu-law|a-law` makes.

use crate::sdp::Codec;

/// The first segment whose end is at least `v` (8: beyond the last).
fn segment(v: i32, ends: &[i32; 8]) -> i32 {
    ends.iter().position(|&e| v <= e).unwrap_or(8) as i32
}

pub fn ulaw(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    let mut pcm = ((i32::from(sample) + 2) >> 2).min(8191);
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    pcm = pcm.min(8159) + 0x21;
    let seg = segment(pcm, &ENDS);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    (((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask) as u8
}

pub fn alaw(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut pcm = ((i32::from(sample) + 4) >> 3).min(4095);
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = segment(pcm, &ENDS);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mantissa = if seg < 2 { (pcm >> 1) & 0x0F } else { (pcm >> seg) & 0x0F };
    (((seg << 4) | mantissa) ^ mask) as u8
}

/// `samples` in `codec`, one byte each.
pub fn encode(codec: Codec, samples: &[i16]) -> Vec<u8> {
    match codec {
        Codec::Pcmu => samples.iter().map(|&s| ulaw(s)).collect(),
        Codec::Pcma => samples.iter().map(|&s| alaw(s)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_and_the_extremes_are_the_standard_codes() {
        assert_eq!((ulaw(0), ulaw(i16::MAX), ulaw(i16::MIN)), (0xFF, 0x80, 0x00));
        assert_eq!((alaw(0), alaw(i16::MAX), alaw(i16::MIN)), (0xD5, 0xAA, 0x2A));
    }

    #[test]
    fn louder_samples_never_code_quieter() {
        // µ-law codes fall as positive samples grow (0xFF quietest, 0x80 loudest).
        let codes: Vec<u8> = (0..=i16::MAX).step_by(97).map(ulaw).collect();
        assert!(codes.windows(2).all(|w| w[0] >= w[1]));
        // A positive and a negative sample of one size differ only in the sign bit.
        for s in [5i16, 300, 4000, 30000] {
            assert_eq!(ulaw(s) & 0x7F, ulaw(-s) & 0x7F);
            assert_eq!((ulaw(s) & 0x80, ulaw(-s) & 0x80), (0x80, 0));
            assert_eq!((alaw(s) & 0x80, alaw(-s) & 0x80), (0x80, 0));
        }
    }
}
