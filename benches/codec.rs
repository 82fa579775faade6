//! Codec microbenchmarks: decode a Produce request, encode a Fetch response.
//! The work lives in `ringmq::bench::micro` so its smoke tests run under `cargo test`.
use ringmq::bench::micro;

fn main() {
    println!("{}", micro::bench_decode_produce(20_000).line());
    println!("{}", micro::bench_encode_fetch(20_000).line());
}
