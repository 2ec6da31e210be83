//! Catalog load time and host-lookup throughput on one core.
//!
//! `cargo run --release --example bench_catalog`
use shadowscope::catalog::{Catalog, Identified};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let t = Instant::now();
    let catalog = Catalog::parse_builtin();
    let load = t.elapsed();
    println!(
        "catalog load: {:.2} ms ({} apps, {} rules)",
        load.as_secs_f64() * 1e3,
        catalog.apps().len(),
        catalog.rules().len()
    );

    // A realistic mix: catalog hosts and deep subdomains of them (hits), mixed case and
    // trailing dots (normalisation), and unknown hosts (misses that reach the pattern set).
    let mut hosts: Vec<String> = Vec::new();
    for (i, r) in catalog.rules().iter().enumerate().filter(|(_, r)| r.value.contains('.')) {
        if r.value.contains('\\') || r.value.contains('^') {
            continue;
        }
        match i % 4 {
            0 => hosts.push(r.value.clone()),
            1 => hosts.push(format!("www.{}", r.value)),
            2 => hosts.push(format!("cdn-{i}.edge.{}", r.value)),
            _ => hosts.push(format!("API.{}.", r.value.to_uppercase())),
        }
    }
    let hits = hosts.len();
    for i in 0..hits / 2 {
        hosts.push(format!("host{i}.shop{}.example-{}.com", i % 97, i % 13));
        if i % 4 == 0 {
            hosts.push(format!("10.{}.{}.{}", i % 250, (i / 250) % 250, i % 7));
        }
    }
    // Interleave hits and misses deterministically.
    let n = hosts.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mix: Vec<&str> = order.iter().filter_map(|i| hosts.get(*i).map(String::as_str)).collect();

    // Warm up (regex lazy DFA caches), then measure.
    let mut matched = 0usize;
    for h in &mix {
        matched += usize::from(catalog.match_host(h).is_some());
    }
    let rounds = 20;
    let t = Instant::now();
    let mut found = 0usize;
    for _ in 0..rounds {
        for h in &mix {
            found += usize::from(black_box(catalog.match_host(black_box(h))).is_some());
        }
    }
    let el = t.elapsed().as_secs_f64();
    let lookups = (rounds * mix.len()) as f64;
    println!(
        "match_host: {:.2} M lookups/s over {} hosts ({:.0}% matched), {:.0} ns/lookup",
        lookups / el / 1e6,
        mix.len(),
        100.0 * matched as f64 / mix.len() as f64,
        el / lookups * 1e9
    );
    black_box(found);

    let t = Instant::now();
    let mut apps = 0usize;
    for h in &mix {
        if let Identified::App { .. } = black_box(catalog.identify_host(h)) {
            apps += 1;
        }
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "identify_host (allocates the rule text / registrable domain): {:.2} M lookups/s",
        mix.len() as f64 / el / 1e6
    );
    black_box(apps);
}
