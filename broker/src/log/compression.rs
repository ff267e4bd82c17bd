//! Kafka's record compression codecs (gzip, snappy, lz4, zstd) as streams with bounds.
//!
//! A RecordBatch v2 keeps its header in the clear and compresses only the records that
//! follow it, with the codec named by bits 0-2 of `attributes`. The broker decompresses a
//! produced batch to validate its records, and recompresses it when the topic's
//! `compression.type` names another codec. Both happen on a blocking thread and both are
//! bounded: [`decoder`] refuses to produce more than a given number of bytes (a
//! decompression bomb costs at most that much CPU and never more memory than one codec
//! window), and [`Compressor`] refuses to write more than the batch may hold. Framing
//! follows Kafka's clients: gzip members, zstd frames, LZ4 frames (64 KiB independent
//! blocks, no checksums, as Kafka writes them), and snappy either raw (librdkafka) or in
//! the xerial block framing (`snappy-java`, Kafka's Java client), both read.

use std::io::{self, BufRead, BufReader, Cursor, Read, Write};

/// A compression codec as numbered in a batch's `attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// 0: records stored as they are.
    None,
    /// 1: gzip.
    Gzip,
    /// 2: snappy.
    Snappy,
    /// 3: LZ4 frames.
    Lz4,
    /// 4: zstd.
    Zstd,
}

impl Codec {
    /// The codec named by bits 0-2 of a batch's `attributes`; `None` for 5-7 (undefined).
    pub fn from_attributes(attributes: i16) -> Option<Codec> {
        match attributes & 0x7 {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Snappy),
            3 => Some(Codec::Lz4),
            4 => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// The codec's number in `attributes`.
    pub fn id(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    /// Kafka's name of the codec (`compression.type` values).
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "uncompressed",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// The error a bounded reader or writer returns once its limit is passed.
#[derive(Debug, thiserror::Error)]
#[error("more than {limit} bytes")]
pub(crate) struct LimitExceeded {
    /// The bound that was passed.
    pub(crate) limit: u64,
}

/// The limit that `e` reports having passed, if it is a [`LimitExceeded`].
pub(crate) fn limit_exceeded(e: &io::Error) -> Option<u64> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<LimitExceeded>())
        .map(|l| l.limit)
}

fn over_limit(limit: u64) -> io::Error {
    io::Error::other(LimitExceeded { limit })
}

/// A reader that fails with [`LimitExceeded`] instead of yielding more than `limit` bytes.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than allowed so that passing the limit is seen.
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(over_limit(self.limit));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Largest zstd window the decoder accepts: never more than the output may be, so that a
/// frame header cannot make it reserve more memory than the limit it decodes under.
fn zstd_window_log(limit: u64) -> u32 {
    let needed = 64 - limit.max(1).saturating_sub(1).leading_zeros();
    needed.clamp(10, 27)
}

/// Magic of the xerial framing `snappy-java` writes: `\x82SNAPPY\0`, version 1, compatible 1.
const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Block size of the xerial framing, as `snappy-java` writes it.
const XERIAL_BLOCK: usize = 32 * 1024;

/// Decodes snappy in one go (it has no streaming form): raw, or xerial-framed blocks.
fn snappy_decode(data: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let bad = |e: snap::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut out = Vec::new();
    let decode_block = |block: &[u8], out: &mut Vec<u8>| -> io::Result<()> {
        let len = snap::raw::decompress_len(block).map_err(bad)?;
        if (out.len() + len) as u64 > limit {
            return Err(over_limit(limit));
        }
        let at = out.len();
        out.resize(at + len, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[at..])
            .map_err(bad)?;
        Ok(())
    };
    let Some(mut rest) = data.strip_prefix(XERIAL_MAGIC.as_slice()) else {
        decode_block(data, &mut out)?;
        return Ok(out);
    };
    while !rest.is_empty() {
        let truncated = || io::Error::new(io::ErrorKind::UnexpectedEof, "truncated snappy block");
        let len = rest.get(..4).ok_or_else(truncated)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let block = rest.get(4..4 + len).ok_or_else(truncated)?;
        decode_block(block, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// A reader of the records that `data` (a batch body compressed with `codec`) holds,
/// failing with [`LimitExceeded`] past `limit` decompressed bytes.
pub(crate) fn decoder<'a>(
    codec: Codec,
    data: &'a [u8],
    limit: u64,
) -> io::Result<Box<dyn BufRead + 'a>> {
    let bounded = |r: Box<dyn Read + 'a>| -> Box<dyn BufRead + 'a> {
        Box::new(BufReader::with_capacity(
            32 * 1024,
            Bounded {
                inner: r,
                left: limit,
                limit,
            },
        ))
    };
    Ok(match codec {
        Codec::None => bounded(Box::new(data)),
        Codec::Gzip => bounded(Box::new(flate2::read::MultiGzDecoder::new(data))),
        Codec::Snappy => Box::new(Cursor::new(snappy_decode(data, limit)?)),
        Codec::Lz4 => bounded(Box::new(Lz4Reader {
            inner: Some(lz4::Decoder::new(data)?),
        })),
        Codec::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(data)?;
            d.window_log_max(zstd_window_log(limit))?;
            bounded(Box::new(d))
        }
    })
}

/// The lz4 crate's decoder ends quietly on a truncated frame; this says so as an error.
struct Lz4Reader<'a> {
    inner: Option<lz4::Decoder<&'a [u8]>>,
}

impl Read for Lz4Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(d) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = d.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(d) = self.inner.take()
        {
            let (rest, done) = d.finish();
            done.map_err(|_| io::Error::new(io::ErrorKind::UnexpectedEof, "truncated LZ4 frame"))?;
            if !rest.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bytes after the LZ4 frame",
                ));
            }
        }
        Ok(n)
    }
}

/// A writer into a `Vec` that fails with [`LimitExceeded`] past `limit` bytes.
struct CappedVec {
    buf: Vec<u8>,
    limit: u64,
}

impl Write for CappedVec {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if (self.buf.len() + data.len()) as u64 > self.limit {
            return Err(over_limit(self.limit));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compresses a stream of record bytes with one codec into a bounded buffer.
pub(crate) struct Compressor {
    inner: Encoder,
}

enum Encoder {
    None(CappedVec),
    Gzip(flate2::write::GzEncoder<CappedVec>),
    Snappy { out: CappedVec, pending: Vec<u8> },
    Lz4(lz4::Encoder<CappedVec>),
    Zstd(zstd::stream::write::Encoder<'static, CappedVec>),
}

impl Compressor {
    /// A compressor for `codec` at `level` (the codec's own scale; ignored by snappy and
    /// none), whose output may not exceed `limit` bytes.
    pub(crate) fn new(codec: Codec, level: i32, limit: u64) -> io::Result<Compressor> {
        let out = CappedVec {
            buf: Vec::new(),
            limit,
        };
        let inner = match codec {
            Codec::None => Encoder::None(out),
            Codec::Gzip => {
                // Kafka's -1 is zlib's default level, 6.
                let level = if (1..=9).contains(&level) { level } else { 6 };
                Encoder::Gzip(flate2::write::GzEncoder::new(
                    out,
                    flate2::Compression::new(level as u32),
                ))
            }
            Codec::Snappy => Encoder::Snappy {
                out,
                pending: Vec::with_capacity(XERIAL_BLOCK),
            },
            Codec::Lz4 => Encoder::Lz4(
                lz4::EncoderBuilder::new()
                    .level(level.clamp(1, 17) as u32)
                    .block_size(lz4::BlockSize::Max64KB)
                    .block_mode(lz4::BlockMode::Independent)
                    .checksum(lz4::ContentChecksum::NoChecksum)
                    .build(out)?,
            ),
            Codec::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(out, level)?),
        };
        Ok(Compressor { inner })
    }

    /// The compressed bytes, once every record byte was written.
    pub(crate) fn finish(self) -> io::Result<Vec<u8>> {
        match self.inner {
            Encoder::None(out) => Ok(out.buf),
            Encoder::Gzip(e) => Ok(e.finish()?.buf),
            Encoder::Snappy { mut out, pending } => {
                if out.buf.is_empty() {
                    out.write_all(XERIAL_MAGIC)?;
                }
                if !pending.is_empty() {
                    snappy_block(&mut out, &pending)?;
                }
                Ok(out.buf)
            }
            Encoder::Lz4(e) => {
                let (out, done) = e.finish();
                done?;
                Ok(out.buf)
            }
            Encoder::Zstd(e) => Ok(e.finish()?.buf),
        }
    }
}

/// Writes one xerial snappy block: its compressed length (i32 big-endian), then it.
fn snappy_block(out: &mut CappedVec, block: &[u8]) -> io::Result<()> {
    let compressed = snap::raw::Encoder::new()
        .compress_vec(block)
        .map_err(io::Error::other)?;
    out.write_all(&(compressed.len() as u32).to_be_bytes())?;
    out.write_all(&compressed)
}

impl Write for Compressor {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Encoder::None(out) => out.write(data),
            Encoder::Gzip(e) => e.write(data),
            Encoder::Snappy { out, pending } => {
                if out.buf.is_empty() {
                    out.write_all(XERIAL_MAGIC)?;
                }
                let take = data.len().min(XERIAL_BLOCK - pending.len());
                pending.extend_from_slice(&data[..take]);
                if pending.len() == XERIAL_BLOCK {
                    snappy_block(out, pending)?;
                    pending.clear();
                }
                Ok(take)
            }
            Encoder::Lz4(e) => e.write(data),
            Encoder::Zstd(e) => e.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut c = Compressor::new(codec, -1, u64::MAX).unwrap();
        c.write_all(data).unwrap();
        c.finish().unwrap()
    }

    fn decompress(codec: Codec, data: &[u8], limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decoder(codec, data, limit)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in CODECS {
            let packed = compress(codec, &data);
            assert_eq!(
                decompress(codec, &packed, u64::MAX).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn kafka_protocol_reads_what_we_compress_and_we_read_what_it_does() {
        use kafka_protocol::compression::{self as kc, Compressor as _, Decompressor as _};
        let data = b"records of a batch, some of them repeated, repeated, repeated".repeat(50);
        let theirs = |codec: Codec, packed: &[u8]| -> Vec<u8> {
            let mut buf = bytes::Bytes::copy_from_slice(packed);
            let f = |b: &mut bytes::Bytes| Ok(b.to_vec());
            match codec {
                Codec::Gzip => kc::Gzip::decompress(&mut buf, f),
                Codec::Snappy => kc::Snappy::decompress(&mut buf, f),
                Codec::Lz4 => kc::Lz4::decompress(&mut buf, f),
                Codec::Zstd => kc::Zstd::decompress(&mut buf, f),
                Codec::None => Ok(packed.to_vec()),
            }
            .unwrap()
        };
        for codec in CODECS {
            assert_eq!(theirs(codec, &compress(codec, &data)), data, "{codec:?}");
            let mut packed = bytes::BytesMut::new();
            let f = |b: &mut bytes::BytesMut| {
                b.extend_from_slice(&data);
                Ok(())
            };
            match codec {
                Codec::Gzip => kc::Gzip::compress(&mut packed, f),
                Codec::Snappy => kc::Snappy::compress(&mut packed, f),
                Codec::Lz4 => kc::Lz4::compress(&mut packed, f),
                Codec::Zstd => kc::Zstd::compress(&mut packed, f),
                Codec::None => kc::None::compress(&mut packed, f),
            }
            .unwrap();
            assert_eq!(
                decompress(codec, &packed, u64::MAX).unwrap(),
                data,
                "{codec:?}"
            );
        }
        // librdkafka sends raw snappy, without the xerial framing.
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Codec::Snappy, &raw, u64::MAX).unwrap(), data);
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for codec in CODECS {
            let packed = compress(codec, &zeros);
            let err = decompress(codec, &packed, 1 << 20).unwrap_err();
            assert_eq!(limit_exceeded(&err), Some(1 << 20), "{codec:?}: {err}");
            assert_eq!(decompress(codec, &packed, 8 << 20).unwrap().len(), 8 << 20);
        }
    }

    #[test]
    fn random_bytes_and_truncated_streams_are_errors() {
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let data = b"0123456789".repeat(100);
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            assert!(decompress(codec, &noise, 1 << 20).is_err(), "{codec:?}");
            let packed = compress(codec, &data);
            let cut = &packed[..packed.len() - 3];
            assert!(
                decompress(codec, cut, 1 << 20).is_err(),
                "{codec:?} truncated"
            );
        }
    }

    #[test]
    fn the_compressor_refuses_to_grow_past_its_limit() {
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for codec in CODECS {
            let mut c = Compressor::new(codec, -1, 1000).unwrap();
            let result = c.write_all(&noise).and_then(|_| c.finish().map(|_| ()));
            let err = result.unwrap_err();
            assert_eq!(limit_exceeded(&err), Some(1000), "{codec:?}: {err}");
        }
    }
}
