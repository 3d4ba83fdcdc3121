//! A gzip file as zlib's `gzwrite` writes it (a directory dump's `.gz`
//! files): a 10-byte header, raw deflate data, and a trailer of the data's
//! CRC-32 and length, each checked as the bytes pass.

/// Where the file stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Part {
    #[default]
    Header,
    Body,
    Trailer,
    Ended,
}

/// One gzip file being read.
pub struct File {
    part: Part,
    /// The header's or the trailer's bytes so far.
    held: Vec<u8>,
    inflate: flate2::Decompress,
    crc: flate2::Crc,
}

impl Default for File {
    fn default() -> Self {
        File {
            part: Part::Header,
            held: Vec::new(),
            inflate: flate2::Decompress::new(false),
            crc: flate2::Crc::new(),
        }
    }
}

const HEADER: usize = 10;
const TRAILER: usize = 8;

impl File {
    /// The next bytes of the file; `out` is scratch space, `sink` gets the data.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut [u8],
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), String> {
        while !input.is_empty() {
            match self.part {
                Part::Header | Part::Trailer => {
                    let want = if self.part == Part::Header {
                        HEADER
                    } else {
                        TRAILER
                    };
                    let n = (want - self.held.len()).min(input.len());
                    self.held.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.held.len() == want {
                        let held = std::mem::take(&mut self.held);
                        self.part = if self.part == Part::Header {
                            check_header(&held)?;
                            Part::Body
                        } else {
                            self.check_trailer(&held)?;
                            Part::Ended
                        };
                    }
                }
                Part::Body => {
                    let (before_in, before_out) =
                        (self.inflate.total_in(), self.inflate.total_out());
                    let status = self
                        .inflate
                        .decompress(input, out, flate2::FlushDecompress::None)
                        .map_err(|e| format!("its gzip data does not decode: {e}"))?;
                    let used = (self.inflate.total_in() - before_in) as usize;
                    let made = (self.inflate.total_out() - before_out) as usize;
                    self.crc.update(&out[..made]);
                    sink(&out[..made]);
                    input = &input[used..];
                    if status == flate2::Status::StreamEnd {
                        self.part = Part::Trailer;
                    } else if used == 0 && made == 0 {
                        return Err("its gzip data does not decode".into());
                    }
                }
                Part::Ended => return Err("data after the end of a gzip file".into()),
            }
        }
        Ok(())
    }

    /// Whether the file ended whole, its trailer checked.
    pub fn ended(&self) -> bool {
        self.part == Part::Ended
    }

    fn check_trailer(&self, trailer: &[u8]) -> Result<(), String> {
        let word = |at: usize| {
            u32::from_le_bytes([
                trailer[at],
                trailer[at + 1],
                trailer[at + 2],
                trailer[at + 3],
            ])
        };
        if word(0) != self.crc.sum() {
            return Err("its gzip data does not match its CRC-32".into());
        }
        // ISIZE: the length modulo 2^32.
        if word(4) != self.inflate.total_out() as u32 {
            return Err("its gzip data is not the length its trailer records".into());
        }
        Ok(())
    }
}

/// The header gzwrite writes: magic, deflate, no optional fields.
fn check_header(header: &[u8]) -> Result<(), String> {
    if header[..3] != [0x1f, 0x8b, 8] {
        return Err("it is not a gzip file".into());
    }
    if header[3] != 0 {
        return Err(format!(
            "its gzip header has optional fields (flags {:#04x}), which pg_dump does not write",
            header[3]
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    fn read(bytes: &[u8], piece: usize) -> Result<(Vec<u8>, bool), String> {
        let mut file = File::default();
        let mut out = vec![0; 1024];
        let mut data = Vec::new();
        for chunk in bytes.chunks(piece) {
            file.feed(chunk, &mut out, |d| data.extend_from_slice(d))?;
        }
        Ok((data, file.ended()))
    }

    #[test]
    fn a_gzip_file_reads_whole_however_it_arrives() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let file = gzip(&data);
        for piece in [1, 9, 10, 11, 4096, file.len()] {
            assert_eq!(
                read(&file, piece),
                Ok((data.clone(), true)),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_cut_or_changed_gzip_file_is_refused() {
        let data = b"1\tone\n2\ttwo\n\\.\n".repeat(100);
        let file = gzip(&data);
        let cut = read(&file[..file.len() - 3], 64).expect("no error yet");
        assert!(!cut.1, "a file cut in its trailer has not ended");
        let mut crc = file.clone();
        let at = crc.len() - 8;
        crc[at] ^= 1;
        assert_eq!(
            read(&crc, 64),
            Err("its gzip data does not match its CRC-32".into())
        );
        let mut extra = file.clone();
        extra.push(0);
        assert_eq!(
            read(&extra, 64),
            Err("data after the end of a gzip file".into())
        );
        let mut named = file;
        named[3] = 0x08;
        assert!(read(&named, 64).unwrap_err().contains("optional fields"));
    }
}
