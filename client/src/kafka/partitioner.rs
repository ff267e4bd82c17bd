//! The default partitioner, identical to the Java client's so a key lands on the same
//! partition whatever language produced it: `positive(murmur2(key)) % partitions`, where
//! `positive` clears the sign bit. Records without a key stick to one partition until its
//! batch is full or sent, then move to another at random (KIP-480), which fills batches
//! instead of spreading tiny ones over every partition.

use std::sync::atomic::{AtomicU64, Ordering};

/// Kafka's murmur2 (32-bit, seed `0x9747b28c`), as `org.apache.kafka.common.utils.Utils`.
pub(crate) fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java's switch falls through from the highest remaining byte down.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition for `key` among `partitions`, as Java's `BuiltInPartitioner`.
pub(crate) fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// A random partition other than `current` (when there is another), for sticky partitioning.
pub(crate) fn next_sticky(current: Option<i32>, partitions: i32) -> i32 {
    static STATE: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);
    // xorshift64*: cheap, and quality does not matter for spreading batches.
    let mut x = STATE.load(Ordering::Relaxed);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    STATE.store(x, Ordering::Relaxed);
    let random = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as i32;
    match current {
        Some(c) if partitions > 1 => (c + 1 + random % (partitions - 1)) % partitions,
        _ => random % partitions.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka_java_test_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keys_map_to_javas_partitions() {
        // Computed with kafka-clients 4.4.0: Utils.toPositive(Utils.murmur2(key)) % 7.
        let cases: [(&[u8], i32, i32); 5] = [
            (b"key-1", 193_331_640, 5),
            (b"order-42", 501_153_024, 1),
            (b"", 275_646_681, 2),
            (b"foobar", -790_332_482, 0),
            (b"abc", 479_470_107, 4),
        ];
        for (key, hash, partition) in cases {
            assert_eq!(murmur2(key), hash);
            assert_eq!(partition_for_key(key, 7), partition);
        }
    }

    #[test]
    fn sticky_partition_moves_to_a_different_partition() {
        for _ in 0..100 {
            let next = next_sticky(Some(2), 4);
            assert!((0..4).contains(&next) && next != 2);
        }
        assert_eq!(next_sticky(Some(0), 1), 0);
    }
}
