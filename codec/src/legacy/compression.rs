//! The compression codecs of legacy message sets and record batches, with Kafka's quirks.
//!
//! Translating records between the old and the new formats recompresses them with the producer's
//! codec, so both directions must write what the other side's readers expect:
//!
//! - gzip: a plain gzip stream; readers accept several members.
//! - snappy: Java producers and brokers wrote the *xerial* framing (a 16-byte header, then blocks
//!   of `[int32 BE length][raw snappy block]`); librdkafka writes one raw snappy block into record
//!   batches. Both are read; magic 2 is written raw (every broker reads it), magic 0/1 in xerial
//!   framing (what the old Java clients, which may be the readers, expect).
//! - lz4: the LZ4 frame format with 64 KiB independent blocks. Kafka's magic-0 frames carry a
//!   *broken* header checksum (KAFKA-3160: computed over the magic number too); magic 0 is written
//!   that way, magic 1/2 correctly, and both checksums are read.
//! - zstd: magic 2 only, and not decoded here: [`LegacyError::Unrepresentable`].
//!
//! Decompression reads through a bound (see [`MAX_DECOMPRESSED`]): sizes the data claims are never
//! trusted for allocations, so a compression bomb ends in [`LegacyError::TooLarge`].

use super::{LegacyError, MAX_DECOMPRESSED};
use crate::records::Compression;
use std::borrow::Cow;
use std::io::{ErrorKind, Read, Write};

/// The 8 bytes that open a xerial snappy stream (`0x82 "SNAPPY" 0x00`).
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// The xerial header: magic, then int32 BE version and minimum compatible version (both 1).
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block, as Java's `SnappyOutputStream` wrote them.
const XERIAL_BLOCK: usize = 32 * 1024;
/// Snappy's best ratio is a 3-byte copy element producing 64 bytes; a block whose header claims
/// more than this many times its size cannot be valid (and must not size an allocation).
const SNAPPY_MAX_RATIO: usize = 22;
/// The LZ4 frame magic number, little-endian on the wire.
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
/// Decompression reads this much at a time (the output grows by at most this past what it holds).
const CHUNK: usize = 32 * 1024;

/// Decompresses `data` (a compressed wrapper's value, or a record batch's records section) written
/// with `codec` by a writer of message format `magic`, up to [`MAX_DECOMPRESSED`] bytes.
///
/// `magic` matters for lz4 only: magic-0 frames may carry any header checksum (Kafka's magic-0
/// reader ignored it, its writer computed it wrongly), later ones the correct or Kafka's broken one.
/// Snappy accepts raw and xerial-framed data whatever the magic.
pub fn decompress(codec: Compression, data: &[u8], magic: i8) -> Result<Vec<u8>, LegacyError> {
    decompress_bounded(codec, data, magic, MAX_DECOMPRESSED)
}

/// [`decompress`] with an explicit bound: several wrappers or batches of one request share one
/// budget, so a caller passes what is left of it. Output beyond `limit` is [`LegacyError::TooLarge`].
pub fn decompress_bounded(codec: Compression, data: &[u8], magic: i8, limit: usize) -> Result<Vec<u8>, LegacyError> {
    match codec {
        Compression::None if data.len() > limit => Err(LegacyError::TooLarge),
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), limit, "gzip data"),
        Compression::Snappy if data.starts_with(&XERIAL_MAGIC) => xerial_decompress(data, limit),
        Compression::Snappy => {
            let mut out = Vec::new();
            snappy_block_into(data, limit, &mut out)?;
            Ok(out)
        }
        Compression::Lz4 => lz4_decompress(data, magic, limit),
        Compression::Zstd => Err(LegacyError::Unrepresentable("zstd: no message format before magic 2 carries it")),
        Compression::Unknown(_) => Err(LegacyError::Unrepresentable("compression codec ids 5-7 are not assigned")),
    }
}

/// Compresses `data` with `codec` the way Kafka's writers of message format `magic` did, so that
/// the reader on the other side of the translation (an old client, or a broker) takes it: snappy
/// raw for magic 2 and xerial-framed for 0/1; lz4 with Kafka's broken header checksum for magic 0.
/// zstd and unassigned codecs are [`LegacyError::Unrepresentable`].
pub fn compress(codec: Compression, data: &[u8], magic: i8) -> Result<Vec<u8>, LegacyError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).map_err(|_| LegacyError::Unrepresentable("gzip refused the data"))?;
            encoder.finish().map_err(|_| LegacyError::Unrepresentable("gzip refused the data"))
        }
        Compression::Snappy if magic >= 2 => snappy_block(data),
        Compression::Snappy => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN.saturating_add(data.len()));
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            for chunk in data.chunks(XERIAL_BLOCK) {
                let block = snappy_block(chunk)?;
                let len = i32::try_from(block.len()).map_err(|_| LegacyError::Unrepresentable("snappy block over 2 GiB"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => lz4_compress(data, magic),
        Compression::Zstd => Err(LegacyError::Unrepresentable("zstd: not written by this filter")),
        Compression::Unknown(_) => Err(LegacyError::Unrepresentable("compression codec ids 5-7 are not assigned")),
    }
}

/// Reads `reader` to its end into memory, failing as soon as more than `limit` bytes come out.
fn read_bounded(mut reader: impl Read, limit: usize, what: &'static str) -> Result<Vec<u8>, LegacyError> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(LegacyError::Malformed(what)),
        };
        grow(&mut out, n, limit)?;
        out.extend_from_slice(chunk.get(..n).ok_or(LegacyError::Malformed(what))?);
    }
}

/// Makes room for `additional` more bytes in `out`, which may hold `limit` bytes at most: the
/// capacity doubles as usual but never passes the limit, so a bound of 64 MiB never allocates 128.
fn grow(out: &mut Vec<u8>, additional: usize, limit: usize) -> Result<(), LegacyError> {
    let needed = out.len().checked_add(additional).filter(|n| *n <= limit).ok_or(LegacyError::TooLarge)?;
    if needed > out.capacity() {
        let target = needed.max(out.capacity().saturating_mul(2)).min(limit);
        out.reserve_exact(target.saturating_sub(out.len()));
    }
    Ok(())
}

fn snappy_block(data: &[u8]) -> Result<Vec<u8>, LegacyError> {
    snap::raw::Encoder::new().compress_vec(data).map_err(|_| LegacyError::Unrepresentable("snappy input over 4 GiB"))
}

/// Appends the raw snappy block `block` to `out`, which may hold at most `limit` bytes in all. The
/// length the block claims is checked against the limit and against what its size can produce
/// before anything is allocated for it.
fn snappy_block_into(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), LegacyError> {
    let claimed = snap::raw::decompress_len(block).map_err(|_| LegacyError::Malformed("snappy data"))?;
    if claimed > block.len().saturating_mul(SNAPPY_MAX_RATIO).saturating_add(16) {
        return Err(LegacyError::Malformed("snappy block claims more than its size can hold"));
    }
    let start = out.len();
    grow(out, claimed, limit)?;
    out.resize(start.saturating_add(claimed), 0);
    let written = match out.get_mut(start..) {
        Some(dst) => snap::raw::Decoder::new().decompress(block, dst).map_err(|_| LegacyError::Malformed("snappy data"))?,
        None => return Err(LegacyError::Malformed("snappy data")),
    };
    out.truncate(start.saturating_add(written));
    Ok(())
}

/// A xerial-framed stream: header, then length-prefixed raw blocks. A header may appear again
/// between blocks (concatenated streams, which xerial's reader accepts too): a block length never
/// starts with 0x82, the header's first byte, as lengths are non-negative.
fn xerial_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, LegacyError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.starts_with(&XERIAL_MAGIC) {
            rest = rest.get(XERIAL_HEADER_LEN..).ok_or(LegacyError::Malformed("xerial snappy header cut short"))?;
            continue;
        }
        let (len, after) = rest.split_first_chunk::<4>().ok_or(LegacyError::Malformed("xerial snappy block length cut short"))?;
        let len = usize::try_from(i32::from_be_bytes(*len)).map_err(|_| LegacyError::Malformed("negative xerial snappy block length"))?;
        let block = after.get(..len).ok_or(LegacyError::Malformed("xerial snappy block cut short"))?;
        snappy_block_into(block, limit, &mut out)?;
        rest = after.get(len..).unwrap_or_default();
    }
    Ok(out)
}

/// Position of the header checksum byte of the LZ4 frame `data` (after the magic number, FLG, BD
/// and the optional content size and dictionary id).
fn lz4_checksum_at(data: &[u8]) -> Result<usize, LegacyError> {
    if !data.starts_with(&LZ4_MAGIC) {
        return Err(LegacyError::Malformed("lz4 data is not an LZ4 frame"));
    }
    let flg = data.get(4).copied().ok_or(LegacyError::Malformed("lz4 frame header cut short"))?;
    let mut at = 6;
    if flg & 0x08 != 0 {
        at += 8;
    }
    if flg & 0x01 != 0 {
        at += 4;
    }
    if data.len() <= at {
        return Err(LegacyError::Malformed("lz4 frame header cut short"));
    }
    Ok(at)
}

/// The header checksum of an LZ4 frame whose header (magic number included) ends before `at`:
/// the second byte of xxhash32 over the descriptor, or, as Kafka's magic-0 writer computed it
/// (KAFKA-3160), over the magic number and the descriptor.
fn lz4_header_checksum(header: &[u8], broken: bool) -> u8 {
    let covered = if broken { header } else { header.get(4..).unwrap_or_default() };
    (xxh32(covered, 0) >> 8) as u8
}

fn lz4_decompress(data: &[u8], magic: i8, limit: usize) -> Result<Vec<u8>, LegacyError> {
    let at = lz4_checksum_at(data)?;
    let header = data.get(..at).unwrap_or_default();
    let correct = lz4_header_checksum(header, false);
    let found = data.get(at).copied();
    // lz4_flex checks the header checksum strictly: hand it a frame whose checksum is correct.
    let frame: Cow<'_, [u8]> = if found == Some(correct) {
        Cow::Borrowed(data)
    } else if magic == 0 || found == Some(lz4_header_checksum(header, true)) {
        let mut patched = data.to_vec();
        if let Some(byte) = patched.get_mut(at) {
            *byte = correct;
        }
        Cow::Owned(patched)
    } else {
        return Err(LegacyError::Malformed("lz4 frame header checksum"));
    };
    read_bounded(lz4_flex::frame::FrameDecoder::new(&frame[..]), limit, "lz4 data")
}

fn lz4_compress(data: &[u8], magic: i8) -> Result<Vec<u8>, LegacyError> {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    let info = FrameInfo::new().block_size(BlockSize::Max64KB).block_mode(BlockMode::Independent);
    let mut encoder = FrameEncoder::with_frame_info(info, Vec::with_capacity(data.len() / 2));
    encoder.write_all(data).map_err(|_| LegacyError::Unrepresentable("lz4 refused the data"))?;
    let mut frame = encoder.finish().map_err(|_| LegacyError::Unrepresentable("lz4 refused the data"))?;
    if magic == 0 {
        let at = lz4_checksum_at(&frame)?;
        let broken = lz4_header_checksum(frame.get(..at).unwrap_or_default(), true);
        if let Some(byte) = frame.get_mut(at) {
            *byte = broken;
        }
    }
    Ok(frame)
}

/// xxHash32 of `data` with `seed`: the checksum of LZ4 frame headers (lz4_flex uses it inside but
/// does not export it, and Kafka's broken magic-0 variant must be computed here).
pub fn xxh32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    fn lane(bytes: &[u8]) -> u32 {
        let mut word = [0u8; 4];
        for (to, from) in word.iter_mut().zip(bytes) {
            *to = *from;
        }
        u32::from_le_bytes(word)
    }
    fn round(acc: u32, input: u32) -> u32 {
        acc.wrapping_add(input.wrapping_mul(P2)).rotate_left(13).wrapping_mul(P1)
    }
    let stripes = data.chunks_exact(16);
    let tail = stripes.remainder();
    let mut h = if data.len() >= 16 {
        let mut acc = [seed.wrapping_add(P1).wrapping_add(P2), seed.wrapping_add(P2), seed, seed.wrapping_sub(P1)];
        for stripe in stripes {
            for (acc, word) in acc.iter_mut().zip(stripe.chunks_exact(4)) {
                *acc = round(*acc, lane(word));
            }
        }
        let [a, b, c, d] = acc;
        a.rotate_left(1).wrapping_add(b.rotate_left(7)).wrapping_add(c.rotate_left(12)).wrapping_add(d.rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u32);
    let words = tail.chunks_exact(4);
    let bytes = words.remainder();
    for word in words {
        h = h.wrapping_add(lane(word).wrapping_mul(P3)).rotate_left(17).wrapping_mul(P4);
    }
    for byte in bytes {
        h = h.wrapping_add(u32::from(*byte).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    const CODECS: [Compression; 3] = [Compression::Gzip, Compression::Snappy, Compression::Lz4];

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect()
    }

    #[test]
    fn xxh32_matches_reference_vectors() {
        assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
        assert_eq!(xxh32(b"a", 0), 0x550D_7456);
        assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
        assert_eq!(xxh32(b"Nobody inspects the spammish repetition", 0), 0xE229_3B2F);
        // The LZ4 frame header every 64 KiB independent-block frame starts with: 04 22 4D 18 60 40 82.
        assert_eq!((xxh32(&[0x60, 0x40], 0) >> 8) as u8, 0x82);
    }

    #[test]
    fn every_codec_round_trips_for_every_magic() {
        for codec in CODECS {
            for magic in [0i8, 1, 2] {
                for len in [0usize, 1, 100, 32 * 1024, 32 * 1024 + 1, 200 * 1024] {
                    let data = sample(len);
                    let packed = compress(codec, &data, magic).unwrap();
                    assert_eq!(decompress(codec, &packed, magic).unwrap(), data, "{codec:?} magic {magic} len {len}");
                }
            }
        }
    }

    #[test]
    fn snappy_is_raw_for_magic_2_and_xerial_before() {
        let data = sample(100 * 1024);
        let raw = compress(Compression::Snappy, &data, 2).unwrap();
        assert!(!raw.starts_with(&XERIAL_MAGIC));
        assert_eq!(snap::raw::Decoder::new().decompress_vec(&raw).unwrap(), data);
        let framed = compress(Compression::Snappy, &data, 1).unwrap();
        assert_eq!(&framed[..16], b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01");
        // Blocks of at most 32 KiB uncompressed: 100 KiB makes four.
        let mut rest = &framed[16..];
        let mut blocks = 0;
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            assert!(snap::raw::decompress_len(&rest[4..4 + len]).unwrap() <= 32 * 1024);
            rest = &rest[4 + len..];
            blocks += 1;
        }
        assert_eq!(blocks, 4);
        // Either form decodes whatever the magic.
        for magic in [0, 1, 2] {
            assert_eq!(decompress(Compression::Snappy, &raw, magic).unwrap(), data);
            assert_eq!(decompress(Compression::Snappy, &framed, magic).unwrap(), data);
        }
        // Concatenated xerial streams (a header between blocks) read as one.
        let mut twice = framed.clone();
        twice.extend_from_slice(&framed);
        assert_eq!(decompress(Compression::Snappy, &twice, 1).unwrap(), [data.clone(), data].concat());
    }

    #[test]
    fn snappy_lengths_are_not_trusted() {
        // A raw block claiming 2^32-1 bytes from five bytes.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let impossible = LegacyError::Malformed("snappy block claims more than its size can hold");
        assert_eq!(decompress_bounded(Compression::Snappy, &claim, 2, usize::MAX), Err(impossible));
        // One that could be real but passes the bound: refused before allocating.
        let zeros = snap::raw::Encoder::new().compress_vec(&[0u8; 4096]).unwrap();
        assert_eq!(decompress_bounded(Compression::Snappy, &zeros, 2, 4095), Err(LegacyError::TooLarge));
        // A xerial block length past the end, and a negative one.
        let mut framed = compress(Compression::Snappy, b"hello", 1).unwrap();
        framed[16..20].copy_from_slice(&1000i32.to_be_bytes());
        assert!(matches!(decompress(Compression::Snappy, &framed, 1), Err(LegacyError::Malformed(_))));
        framed[16..20].copy_from_slice(&(-2i32).to_be_bytes());
        assert!(matches!(decompress(Compression::Snappy, &framed, 1), Err(LegacyError::Malformed(_))));
    }

    #[test]
    fn lz4_header_checksum_is_broken_for_magic_0_only() {
        let data = sample(150 * 1024);
        let v0 = compress(Compression::Lz4, &data, 0).unwrap();
        let v1 = compress(Compression::Lz4, &data, 1).unwrap();
        let v2 = compress(Compression::Lz4, &data, 2).unwrap();
        // 64 KiB independent blocks, no content size, no checksums: FLG 0x60, BD 0x40.
        assert_eq!(&v1[..7], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
        assert_eq!(v1, v2);
        assert_eq!(&v0[..6], &v1[..6]);
        assert_eq!(v0[6], (xxh32(&v0[..6], 0) >> 8) as u8);
        assert_ne!(v0[6], v1[6]);
        assert_eq!(&v0[7..], &v1[7..]);
        // lz4_flex itself takes only the correct checksum.
        let mut plain = Vec::new();
        assert!(lz4_flex::frame::FrameDecoder::new(&v0[..]).read_to_end(&mut plain).is_err());
        // Both checksums decode at every magic.
        for frame in [&v0, &v1] {
            for magic in [0, 1, 2] {
                assert_eq!(decompress(Compression::Lz4, frame, magic).unwrap(), data);
            }
        }
        // Any other checksum: accepted for magic 0 (Kafka's magic-0 reader ignored it), not after.
        let mut garbage = v1.clone();
        garbage[6] = garbage[6].wrapping_add(1);
        if garbage[6] == v0[6] {
            garbage[6] = garbage[6].wrapping_add(1);
        }
        assert_eq!(decompress(Compression::Lz4, &garbage, 0).unwrap(), data);
        assert_eq!(decompress(Compression::Lz4, &garbage, 1), Err(LegacyError::Malformed("lz4 frame header checksum")));
    }

    #[test]
    fn lz4_frames_of_other_writers_decode() {
        // A frame with a content size and content checksum (what the lz4 CLI may write).
        use lz4_flex::frame::{FrameEncoder, FrameInfo};
        let data = sample(70_000);
        let info = FrameInfo::new().content_size(Some(data.len() as u64)).content_checksum(true).block_checksums(true);
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(&data).unwrap();
        let frame = encoder.finish().unwrap();
        assert_eq!(decompress(Compression::Lz4, &frame, 1).unwrap(), data);
        assert!(matches!(decompress(Compression::Lz4, b"not lz4 at all", 1), Err(LegacyError::Malformed(_))));
        assert!(matches!(decompress(Compression::Lz4, &frame[..5], 1), Err(LegacyError::Malformed(_))));
    }

    #[test]
    fn gzip_reads_several_members() {
        let mut two = compress(Compression::Gzip, b"first ", 1).unwrap();
        two.extend(compress(Compression::Gzip, b"second", 1).unwrap());
        assert_eq!(decompress(Compression::Gzip, &two, 1).unwrap(), b"first second");
        assert!(matches!(decompress(Compression::Gzip, b"\x1f\x8b garbage", 1), Err(LegacyError::Malformed(_))));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_bound() {
        // 200 MB of zeros, compressed by streaming (some 200 KB), never held uncompressed.
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..200 {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
        assert_eq!(decompress(Compression::Gzip, &bomb, 1), Err(LegacyError::TooLarge));
        assert_eq!(decompress_bounded(Compression::Gzip, &bomb, 1, 1000), Err(LegacyError::TooLarge));
    }

    #[test]
    fn bombs_of_the_other_codecs_stop_at_the_bound() {
        let data = vec![0u8; 2 * 1024 * 1024];
        for codec in CODECS {
            for magic in [0, 2] {
                let packed = compress(codec, &data, magic).unwrap();
                assert_eq!(decompress_bounded(codec, &packed, magic, 1024 * 1024), Err(LegacyError::TooLarge), "{codec:?}");
                assert_eq!(decompress_bounded(codec, &packed, magic, data.len()).unwrap().len(), data.len());
            }
        }
        assert_eq!(decompress_bounded(Compression::None, &data, 2, 10), Err(LegacyError::TooLarge));
        // The output's capacity never passes the bound, whatever the growth pattern.
        let limit = 3 * 1024 * 1024 + 5;
        for codec in CODECS {
            let out = decompress_bounded(codec, &compress(codec, &sample(limit), 1).unwrap(), 1, limit).unwrap();
            assert!(out.capacity() <= limit, "{codec:?} {}", out.capacity());
        }
    }

    #[test]
    fn zstd_and_unknown_codecs_are_unrepresentable() {
        for codec in [Compression::Zstd, Compression::Unknown(5)] {
            assert!(matches!(decompress(codec, b"x", 2), Err(LegacyError::Unrepresentable(_))));
            assert!(matches!(compress(codec, b"x", 2), Err(LegacyError::Unrepresentable(_))));
        }
        assert!(matches!(decompress(Compression::Zstd, b"x", 2), Err(LegacyError::Unrepresentable(what)) if what.starts_with("zstd")));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..600), magic in 0i8..3) {
            for codec in CODECS {
                let _ = decompress_bounded(codec, &data, magic, 1 << 20);
            }
        }

        #[test]
        fn damaged_streams_never_panic(
            len in 0usize..5000,
            flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let data = sample(len);
            for codec in CODECS {
                for magic in [0i8, 1, 2] {
                    let mut packed = compress(codec, &data, magic).unwrap();
                    for (at, byte) in &flips {
                        let i = at.index(packed.len());
                        packed[i] ^= byte;
                    }
                    let _ = decompress_bounded(codec, &packed, magic, 1 << 20);
                    let end = cut.index(packed.len() + 1);
                    let _ = decompress_bounded(codec, &packed[..end], magic, 1 << 20);
                }
            }
        }
    }
}
