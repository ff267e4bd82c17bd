//! Fuzzes the Kafka listener's request decoder with whole frames (header and body,
//! without the `i32` length prefix), as a client would send them. The target runs on the
//! system allocator, not strand's `GuardedAllocator`: libFuzzer's `-malloc_limit_mb` then
//! reports any allocation sized from a declared count that the frame's bytes cannot back,
//! and `scripts/test` also runs it under an address-space limit (`prlimit --as`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = strand_broker::decode_request_frame(bytes::Bytes::copy_from_slice(data));
});
