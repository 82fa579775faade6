//! CRC-32C microbenchmarks on 1 KiB and 1 MiB (the work lives in `ringmq::bench::micro`).
use ringmq::bench::micro;

fn main() {
    let kib = micro::bench_crc32c(1 << 10, 1_000_000);
    let mib = micro::bench_crc32c(1 << 20, 2_000);
    for r in [&kib, &mib] {
        println!("{}", r.line());
    }
    let gb_per_s = (1 << 20) as f64 / mib.ns_per_op;
    println!("crc32c/1MiB throughput: {gb_per_s:.2} GB/s");
}
