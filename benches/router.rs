//! Router hand-off round trip between two glommio executors over `channel_mesh`
//! (the work lives in `ringmq::bench::micro`).
use ringmq::bench::micro;

fn main() {
    match micro::bench_router_round_trip(200_000) {
        Ok(r) => println!("{}", r.line()),
        Err(e) => {
            eprintln!("router bench failed: {e}");
            std::process::exit(1);
        }
    }
}
