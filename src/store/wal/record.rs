//! One log record: a group-committed batch of commands as the sled writes they make.
//!
//! On disk: `[len u32][crc u32][lsn u64][payload; len]`, little-endian. The CRC (CRC-32 from
//! `crc32fast`, hardware accelerated) covers the lsn and the payload, so a record whose
//! header survived a torn write but whose body did not is caught, and so is a record copied to
//! the wrong place. The payload holds physical redo effects (absolute puts and deletes of sled
//! keys): applying a record twice leaves the same tree as applying it once, which is what makes
//! replay after a crash (even a crash during replay) safe.

/// Bytes before the payload.
pub const HEADER: usize = 16;
/// A record larger than this is refused when written and treated as damage when read: no batch
/// comes near it (1024 commands of at most 1 MiB each would be 1 GiB; bodies are limited to
/// `server.max_body_bytes`), and a bound stops a corrupted length from asking for gigabytes.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// What one command of a batch was, kept in the record for `hookrelay store check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CommandKind {
    /// A webhook accepted (new, duplicate, update or coalesced).
    Accept = 1,
    /// A delivery outcome, pause, resume, drop or purge.
    Write = 2,
    /// Dead letters replayed.
    Replay = 3,
    /// A click on an approval request (decision, reason asked, refusal noted).
    Interaction = 4,
}

impl CommandKind {
    fn from_u8(b: u8) -> Option<CommandKind> {
        match b {
            1 => Some(CommandKind::Accept),
            2 => Some(CommandKind::Write),
            3 => Some(CommandKind::Replay),
            4 => Some(CommandKind::Interaction),
            _ => None,
        }
    }
}

/// One change to the sled tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Put(Vec<u8>, Vec<u8>),
    Del(Vec<u8>),
}

impl Effect {
    pub fn key(&self) -> &[u8] {
        match self {
            Effect::Put(k, _) | Effect::Del(k) => k,
        }
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Log sequence number: one per record, consecutive from 1.
    pub lsn: u64,
    /// The commands of the batch, in order (for `store check`).
    pub commands: Vec<CommandKind>,
    /// The batch's writes, in the order they are applied.
    pub effects: Vec<Effect>,
}

/// Encodes a record, header included.
pub fn encode(lsn: u64, commands: &[CommandKind], effects: &[Effect]) -> Vec<u8> {
    let size: usize = effects
        .iter()
        .map(|e| match e {
            Effect::Put(k, v) => 9 + k.len() + v.len(),
            Effect::Del(k) => 5 + k.len(),
        })
        .sum();
    let mut out = Vec::with_capacity(HEADER + 8 + commands.len() + size);
    out.extend_from_slice(&[0u8; 8]); // len and crc, filled in below
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&(commands.len() as u32).to_le_bytes());
    out.extend(commands.iter().map(|c| *c as u8));
    out.extend_from_slice(&(effects.len() as u32).to_le_bytes());
    for e in effects {
        match e {
            Effect::Put(k, v) => {
                out.push(1);
                put_bytes(&mut out, k);
                put_bytes(&mut out, v);
            }
            Effect::Del(k) => {
                out.push(2);
                put_bytes(&mut out, k);
            }
        }
    }
    let len = (out.len() - HEADER) as u32;
    let crc = crc32fast::hash(&out[8..]);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Why bytes at an offset are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Fewer bytes than the header, or than the header says.
    Short { have: usize, need: usize },
    /// A length no writer produces.
    BadLength(u64),
    /// The checksum does not match: the bytes changed after they were written.
    Checksum { stored: u32, computed: u32 },
    /// The checksum matches but the payload does not parse (a bug, not a disk fault).
    Malformed(&'static str),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Short { have, need } => {
                write!(f, "{have} bytes where the record needs {need}")
            }
            Invalid::BadLength(n) => write!(f, "a record length of {n} bytes, which is impossible"),
            Invalid::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
            ),
            Invalid::Malformed(what) => write!(f, "a record that does not parse ({what})"),
        }
    }
}

/// Reads the record at the start of `buf`; returns it with its total size.
pub fn decode(buf: &[u8]) -> Result<(Record, usize), Invalid> {
    if buf.len() < HEADER {
        return Err(Invalid::Short {
            have: buf.len(),
            need: HEADER,
        });
    }
    let len = u32::from_le_bytes(buf[..4].try_into().unwrap_or_default()) as usize;
    if !(8..=MAX_PAYLOAD).contains(&len) {
        return Err(Invalid::BadLength(len as u64));
    }
    let total = HEADER + len;
    if buf.len() < total {
        return Err(Invalid::Short {
            have: buf.len(),
            need: total,
        });
    }
    let stored = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
    let computed = crc32fast::hash(&buf[8..total]);
    if stored != computed {
        return Err(Invalid::Checksum { stored, computed });
    }
    let lsn = u64::from_le_bytes(buf[8..16].try_into().unwrap_or_default());
    let mut r = Reader {
        buf: &buf[HEADER..total],
    };
    let n = r.u32()? as usize;
    let commands = r
        .take(n)?
        .iter()
        .map(|b| CommandKind::from_u8(*b).ok_or(Invalid::Malformed("command kind")))
        .collect::<Result<Vec<_>, _>>()?;
    let n = r.u32()? as usize;
    let mut effects = Vec::with_capacity(n.min(len));
    for _ in 0..n {
        let effect = match r.take(1)?[0] {
            1 => {
                let k = r.bytes()?;
                Effect::Put(k, r.bytes()?)
            }
            2 => Effect::Del(r.bytes()?),
            _ => return Err(Invalid::Malformed("effect kind")),
        };
        effects.push(effect);
    }
    if !r.buf.is_empty() {
        return Err(Invalid::Malformed("trailing bytes"));
    }
    Ok((
        Record {
            lsn,
            commands,
            effects,
        },
        total,
    ))
}

/// The lsn a header claims, without checking anything (for damage reports).
pub fn claimed_lsn(buf: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(buf.get(8..16)?.try_into().ok()?))
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Invalid> {
        if self.buf.len() < n {
            return Err(Invalid::Malformed("a field runs past the record"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, Invalid> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, Invalid> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode(
            7,
            &[CommandKind::Accept, CommandKind::Write],
            &[
                Effect::Put(b"n1".to_vec(), b"{\"id\":1}".to_vec()),
                Effect::Del(b"q1".to_vec()),
            ],
        )
    }

    #[test]
    fn a_record_round_trips() {
        let bytes = sample();
        let (r, size) = decode(&bytes).unwrap();
        assert_eq!(size, bytes.len());
        assert_eq!(r.lsn, 7);
        assert_eq!(r.commands, vec![CommandKind::Accept, CommandKind::Write]);
        assert_eq!(r.effects[1], Effect::Del(b"q1".to_vec()));
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_detected() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "flipped byte {i}");
        }
    }
}
