//! One lz4 frame, decoded as it arrives in pieces of any size.
//!
//! pg_dump (16 and later) writes each data block of a custom-format archive as
//! one frame of liblz4's frame format, its preferences zeroed but for the
//! level: linked blocks of at most 64 KiB, no checksum but the header's. The
//! frame is parsed here and every checksum it has is verified; its blocks are
//! decoded by `lz4_flex`, holding one block and the 64 KiB of output before
//! it, which a linked block may refer to.

use std::hash::Hasher as _;
use twox_hash::XxHash32;

/// The magic number that opens an lz4 frame.
const MAGIC: u32 = 0x184D_2204;

/// How far back a linked block may refer, into the output before it.
const WINDOW: usize = 64 << 10;

/// An lz4 frame being decoded.
#[derive(Default)]
pub(super) struct Frame {
    stage: Stage,
    /// The current part of the frame (its descriptor, a block's size, a
    /// block, a checksum) while it arrives in pieces.
    held: Vec<u8>,
    flags: Flags,
    /// The frame's output so far, as far back as a linked block may refer.
    window: Vec<u8>,
    /// One compressed block's output.
    block: Vec<u8>,
    /// The checksum of the output so far, and its length.
    content: XxHash32,
    content_len: u64,
}

/// What the frame's descriptor says.
#[derive(Debug, Default)]
struct Flags {
    linked: bool,
    block_checksums: bool,
    content_checksum: bool,
    content_size: Option<u64>,
    block_max: usize,
}

/// The part of the frame to read next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stage {
    /// The magic number and the descriptor's two flag bytes.
    #[default]
    Start,
    /// The rest of the descriptor: content size, dictionary id, its checksum.
    Descriptor {
        flg: u8,
        bd: u8,
    },
    /// A block's size, or the end mark.
    BlockSize,
    /// A block, and its checksum if the frame has them.
    Block {
        size: usize,
        compressed: bool,
    },
    /// The output's checksum, after the end mark.
    ContentChecksum,
    Ended,
}

fn undecodable(why: impl std::fmt::Display) -> String {
    format!("its lz4 data does not decode: {why}")
}

fn le32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().expect("four bytes"))
}

impl Frame {
    /// The next bytes of the frame; its output goes to `output`, a block at a time.
    pub(super) fn feed(
        &mut self,
        mut input: &[u8],
        mut output: impl FnMut(&[u8]),
    ) -> Result<(), String> {
        while !input.is_empty() {
            let Some(need) = self.need() else {
                // pg_dump starts a frame with each data block and ends it with the block.
                return Err("data after the end of its lz4 frame".into());
            };
            if self.held.is_empty() && input.len() >= need {
                let (part, rest) = input.split_at(need);
                input = rest;
                self.read(part, &mut output)?;
            } else {
                let n = (need - self.held.len()).min(input.len());
                self.held.extend_from_slice(&input[..n]);
                input = &input[n..];
                if self.held.len() == need {
                    let mut held = std::mem::take(&mut self.held);
                    let read = self.read(&held, &mut output);
                    held.clear();
                    self.held = held;
                    read?;
                }
            }
        }
        Ok(())
    }

    /// Whether the frame has ended, all of it read.
    pub(super) fn ended(&self) -> bool {
        self.stage == Stage::Ended
    }

    /// The length of the part to read next, none once the frame has ended.
    fn need(&self) -> Option<usize> {
        Some(match self.stage {
            Stage::Start => 6,
            Stage::Descriptor { flg, .. } => {
                1 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 }
            }
            Stage::BlockSize | Stage::ContentChecksum => 4,
            Stage::Block { size, .. } => size + if self.flags.block_checksums { 4 } else { 0 },
            Stage::Ended => return None,
        })
    }

    /// Reads one whole part of the frame.
    fn read(&mut self, part: &[u8], output: &mut impl FnMut(&[u8])) -> Result<(), String> {
        match self.stage {
            Stage::Start => {
                let magic = le32(part);
                if magic != MAGIC {
                    return Err(undecodable(format!(
                        "it does not start as an lz4 frame does (magic number {magic:#010x})"
                    )));
                }
                let (flg, bd) = (part[4], part[5]);
                if flg >> 6 != 1 {
                    return Err(undecodable(format!("frame format version {}", flg >> 6)));
                }
                if flg & 0x02 != 0 || bd & 0x8f != 0 {
                    return Err(undecodable("reserved bits set in its frame descriptor"));
                }
                let block_max = match (bd >> 4) & 0x07 {
                    4 => 64 << 10,
                    5 => 256 << 10,
                    6 => 1 << 20,
                    7 => 4 << 20,
                    other => return Err(undecodable(format!("block size code {other}"))),
                };
                self.flags = Flags {
                    linked: flg & 0x20 == 0,
                    block_checksums: flg & 0x10 != 0,
                    content_checksum: flg & 0x04 != 0,
                    content_size: None,
                    block_max,
                };
                self.stage = Stage::Descriptor { flg, bd };
            }
            Stage::Descriptor { flg, bd } => {
                let (fields, checksum) = part.split_at(part.len() - 1);
                let mut descriptor = [0; 14];
                descriptor[..2].copy_from_slice(&[flg, bd]);
                descriptor[2..2 + fields.len()].copy_from_slice(fields);
                let expected = XxHash32::oneshot(0, &descriptor[..2 + fields.len()]) >> 8;
                if checksum[0] != expected as u8 {
                    return Err(undecodable(
                        "its frame descriptor's checksum does not match",
                    ));
                }
                let mut fields = fields;
                if flg & 0x08 != 0 {
                    let (size, rest) = fields.split_at(8);
                    self.flags.content_size =
                        Some(u64::from_le_bytes(size.try_into().expect("eight bytes")));
                    fields = rest;
                }
                if flg & 0x01 != 0 {
                    return Err(undecodable(format!(
                        "the frame needs dictionary {}, which pg_dump never uses",
                        le32(fields)
                    )));
                }
                self.stage = Stage::BlockSize;
            }
            Stage::BlockSize => {
                let word = le32(part);
                if word == 0 {
                    if let Some(size) = self.flags.content_size.filter(|s| *s != self.content_len) {
                        return Err(undecodable(format!(
                            "the frame says {size} bytes of content, its blocks hold {}",
                            self.content_len
                        )));
                    }
                    self.stage = if self.flags.content_checksum {
                        Stage::ContentChecksum
                    } else {
                        Stage::Ended
                    };
                } else {
                    let size = (word & 0x7fff_ffff) as usize;
                    if size > self.flags.block_max {
                        return Err(undecodable(format!(
                            "a block of {size} bytes in a frame of blocks of at most {}",
                            self.flags.block_max
                        )));
                    }
                    self.stage = Stage::Block {
                        size,
                        compressed: word >> 31 == 0,
                    };
                }
            }
            Stage::Block { size, compressed } => {
                let (data, checksum) = part.split_at(size);
                if self.flags.block_checksums && XxHash32::oneshot(0, data) != le32(checksum) {
                    return Err(undecodable("a block's checksum does not match"));
                }
                let decoded = if compressed {
                    self.block.resize(self.flags.block_max, 0);
                    let before: &[u8] = if self.flags.linked { &self.window } else { &[] };
                    let n =
                        lz4_flex::block::decompress_into_with_dict(data, &mut self.block, before)
                            .map_err(undecodable)?;
                    &self.block[..n]
                } else {
                    data
                };
                output(decoded);
                self.content_len += decoded.len() as u64;
                if self.flags.content_checksum {
                    self.content.write(decoded);
                }
                if self.flags.linked {
                    remember(&mut self.window, decoded);
                }
                self.stage = Stage::BlockSize;
            }
            Stage::ContentChecksum => {
                if le32(part) != self.content.finish_32() {
                    return Err(undecodable("its content checksum does not match"));
                }
                self.stage = Stage::Ended;
            }
            Stage::Ended => unreachable!("nothing is read after the end"),
        }
        Ok(())
    }
}

/// Keeps the last [`WINDOW`] bytes of the output, `decoded` its newest.
fn remember(window: &mut Vec<u8>, decoded: &[u8]) {
    let from = decoded.len().saturating_sub(WINDOW);
    let keep = WINDOW - (decoded.len() - from);
    window.drain(..window.len().saturating_sub(keep));
    window.extend_from_slice(&decoded[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/lz4")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The frame's output, or why it does not decode or is not whole.
    fn decode(bytes: &[u8]) -> Result<Vec<u8>, String> {
        let mut frame = Frame::default();
        let mut out = Vec::new();
        frame.feed(bytes, |d| out.extend_from_slice(d))?;
        frame
            .ended()
            .then_some(out)
            .ok_or_else(|| "stops short".into())
    }

    /// A frame of one uncompressed block, with the descriptor `flg`, `bd`
    /// and `fields` (content size, dictionary id) and a right header checksum.
    fn frame_of(flg: u8, bd: u8, fields: &[u8], content: &[u8]) -> Vec<u8> {
        let mut descriptor = vec![flg, bd];
        descriptor.extend_from_slice(fields);
        let mut f = MAGIC.to_le_bytes().to_vec();
        f.extend_from_slice(&descriptor);
        f.push((XxHash32::oneshot(0, &descriptor) >> 8) as u8);
        f.extend_from_slice(&(content.len() as u32 | 1 << 31).to_le_bytes());
        f.extend_from_slice(content);
        f.extend_from_slice(&[0; 4]);
        f
    }

    #[test]
    fn pg_dumps_frames_are_linked_64_kib_blocks_without_checksums() {
        let orders = fixture("pg18-orders.lz4");
        assert_eq!(le32(&orders), MAGIC);
        // Version 1, linked blocks, no checksums, no content size, no dictionary.
        assert_eq!(orders[4], 0b0100_0000, "FLG");
        // Blocks of at most 64 KiB.
        assert_eq!(orders[5], 0b0100_0000, "BD");
        // Its second block refers back into the first: the window is needed.
        let first = le32(&orders[7..]) as usize;
        let second = &orders[7 + 4 + first..];
        let data = &second[4..4 + le32(second) as usize];
        let mut out = vec![0; 64 << 10];
        assert!(lz4_flex::block::decompress_into(data, &mut out).is_err());
        assert!(decode(&orders).is_ok());
    }

    #[test]
    fn frames_decode_to_what_lz4s_own_tool_makes_of_them() {
        use sha2::{Digest, Sha256};
        // `lz4 -dc NAME | sha256sum`, lz4 1.9.4.
        for (name, len, sha) in [
            (
                "pg18-orders.lz4",
                87_123,
                "f49a804bbbb82cdf386299ab58233d72d4d874b1aa8400730af714026c3b41eb",
            ),
            (
                "pg18-receipts.lz4",
                110,
                "2d6e2804b0736d53b7245dbdbedbd83b74c0069651e57302bebcd2e50a88f3f0",
            ),
            (
                "pg18-empty.lz4",
                5,
                "912db542cbceae6c486480c89555c926655bb7300575c7f46b4e4b3a181e16ba",
            ),
            (
                "cli-linked.lz4",
                180_003,
                "e8046da37b65fc3a827cf0d3edc855c0c922f0dd4eee4b2f9a27246165923bba",
            ),
            (
                "cli-independent.lz4",
                360_003,
                "d64e1490ba91fe3ea508dfda56b082fbe9e3b334ad5c1508d709928f4ccf3f32",
            ),
        ] {
            let out = decode(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.len(), len, "{name}");
            let digest: String = Sha256::digest(&out)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(digest, sha, "{name}");
        }
    }

    #[test]
    fn a_frame_is_all_of_a_data_block() {
        let empty = fixture("pg18-empty.lz4");
        let twice = [empty.clone(), empty].concat();
        assert_eq!(
            decode(&twice),
            Err("data after the end of its lz4 frame".into())
        );
    }

    #[test]
    fn what_pg_dump_never_writes_is_refused_by_name() {
        let skippable = [&0x184D_2A50u32.to_le_bytes()[..], &[4, 0, 0, 0, 1, 2, 3, 4]].concat();
        let refused = decode(&skippable).expect_err("skippable");
        assert!(refused.contains("magic number 0x184d2a50"), "{refused}");
        let with_dictionary = frame_of(0x41, 0x40, &7u32.to_le_bytes(), b"\\.\n");
        let refused = decode(&with_dictionary).expect_err("dictionary");
        assert!(refused.contains("needs dictionary 7"), "{refused}");
        let reserved = frame_of(0x42, 0x40, &[], b"\\.\n");
        assert!(
            decode(&reserved)
                .expect_err("reserved")
                .contains("reserved bits")
        );
    }

    #[test]
    fn an_empty_stored_block_is_nothing() {
        let mut frame = frame_of(0x40, 0x40, &[], b"\\.\n");
        let end = frame.len() - 4;
        frame.splice(end..end, (1u32 << 31).to_le_bytes());
        assert_eq!(decode(&frame), Ok(b"\\.\n".to_vec()));
    }

    #[test]
    fn the_descriptor_and_content_size_are_checked() {
        let good = frame_of(0x48, 0x40, &3u64.to_le_bytes(), b"\\.\n");
        assert_eq!(decode(&good), Ok(b"\\.\n".to_vec()));
        let mut bad_checksum = good.clone();
        bad_checksum[6 + 8] ^= 1;
        assert!(
            decode(&bad_checksum)
                .expect_err("header")
                .contains("checksum")
        );
        let wrong_size = frame_of(0x48, 0x40, &4u64.to_le_bytes(), b"\\.\n");
        assert!(
            decode(&wrong_size)
                .expect_err("size")
                .contains("4 bytes of content")
        );
    }

    #[test]
    fn checksums_when_a_frame_has_them_catch_every_flipped_byte() {
        // Written by lz4's tool: linked 64 KiB blocks, each with its checksum,
        // then the content's size and checksum.
        let linked = fixture("cli-linked.lz4");
        assert_eq!(linked[4], 0b0101_1100, "FLG");
        assert!(decode(&linked).is_ok());
        for at in 0..linked.len() {
            let mut flipped = linked.clone();
            flipped[at] ^= 0xff;
            assert!(decode(&flipped).is_err(), "byte {at}");
        }
    }

    #[test]
    fn the_window_is_the_last_64_kib() {
        let mut window = Vec::new();
        remember(&mut window, &[1; 40 << 10]);
        remember(&mut window, &[2; 40 << 10]);
        assert_eq!(window.len(), WINDOW);
        assert_eq!(window[..24 << 10], [1; 24 << 10]);
        remember(
            &mut window,
            &(0..=255).cycle().take(70 << 10).collect::<Vec<u8>>(),
        );
        assert_eq!(window.len(), WINDOW);
        assert_eq!(window[0], ((6 << 10) % 256) as u8);
    }
}
