//! The checkpoint marker: the lsn of the last record whose effects sled holds on disk.
//!
//! Written only after sled's flush and `fdatasync`, as a temporary file renamed over the old one
//! (and the folder synced), so a crash leaves the old marker or the new one, never half of one.
//! Its own checksum tells a damaged marker from a missing one.

use std::io::Write;
use std::path::Path;

const NAME: &str = "checkpoint";
const TMP: &str = "checkpoint.tmp";

/// Reads the marker: 0 when there is none (nothing checkpointed yet: replay from the start).
pub fn read(dir: &Path) -> Result<u64, String> {
    let bytes = match std::fs::read(dir.join(NAME)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.join(NAME).display())),
    };
    let valid = bytes.len() == 12 && crc32fast::hash(&bytes[..8]).to_le_bytes() == bytes[8..12];
    if !valid {
        return Err(format!(
            "the checkpoint marker {} is damaged ({} bytes, checksum does not match)",
            dir.join(NAME).display(),
            bytes.len()
        ));
    }
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&bytes[..8]);
    Ok(u64::from_le_bytes(lsn))
}

/// Writes the marker durably.
pub fn write(dir: &Path, lsn: u64) -> std::io::Result<()> {
    let mut bytes = lsn.to_le_bytes().to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
    let tmp = dir.join(TMP);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(NAME))?;
    super::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_marker_round_trips_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(super::read(dir.path()), Ok(0));
        super::write(dir.path(), 42).unwrap();
        assert_eq!(super::read(dir.path()), Ok(42));
        let path = dir.path().join("checkpoint");
        let mut b = std::fs::read(&path).unwrap();
        b[0] ^= 1;
        std::fs::write(&path, b).unwrap();
        assert!(super::read(dir.path()).unwrap_err().contains("damaged"));
    }
}
