//! Compose load + conversion of a generated 500-service stack.
//!
//! `cargo bench --bench compose` prints the median and best times of
//! `compose::load_str` + `compose::convert` (target: under 50 ms).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bosun::compose::{self, LoadOptions};

fn generate(services: usize) -> String {
    let mut s = String::from(
        "version: \"3.9\"\nx-common: &common\n  logging:\n    driver: json-file\n    options: {max-size: 10m}\n",
    );
    s.push_str("services:\n");
    for i in 0..services {
        let _ = write!(
            s,
            "  svc{i}:\n    <<: *common\n    image: registry.example.com/team/app{i}:${{TAG:-1.0}}\n    command: [\"serve\", \"--port\", \"80{i}\"]\n    environment:\n      INDEX: \"{i}\"\n      DOMAIN: ${{DOMAIN:-example.org}}\n      LIST: a,b,c\n    ports:\n      - \"{}:80\"\n    volumes:\n      - data{i}:/data\n      - ./conf/app{i}.yml:/etc/app.yml:ro\n    networks: [front, back]\n    healthcheck:\n      test: curl -f http://localhost/ || exit 1\n      interval: 10s\n      retries: 3\n    deploy:\n      replicas: 2\n      labels:\n        traefik.enable: \"true\"\n        traefik.http.routers.r{i}.rule: Host(`app{i}.${{DOMAIN:-example.org}}`)\n      resources:\n        limits: {{cpus: '0.5', memory: 256M}}\n      update_config: {{parallelism: 1, delay: 10s, order: start-first}}\n      restart_policy: {{condition: on-failure, delay: 5s}}\n      placement:\n        constraints: [node.role == worker]\n",
            10000 + i
        );
    }
    s.push_str("networks:\n  front:\n    driver: overlay\n  back:\n    internal: true\nvolumes:\n");
    for i in 0..services {
        let _ = writeln!(s, "  data{i}:");
    }
    s
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` (an unoptimised build): nothing to measure;
        // only `cargo bench` (which passes `--bench`) measures.
        return;
    }
    let text = generate(500);
    let opts = LoadOptions::new("/srv/stack").var("DOMAIN", "swarm.example.com");
    let mut samples = Vec::new();
    let mut services = 0;
    for _ in 0..30 {
        let start = Instant::now();
        let project = compose::load_str("bench.yml", &text, &opts).expect("valid compose");
        let objs = compose::convert(&project, "bench").expect("converts");
        samples.push(start.elapsed());
        services = objs.services.len();
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let best = samples[0];
    println!(
        "compose load+convert, {services} services, {} KiB: median {:.2} ms, best {:.2} ms ({} runs)",
        text.len() / 1024,
        median.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3,
        samples.len()
    );
    assert!(
        median < Duration::from_millis(50),
        "median {median:?} over the 50 ms budget"
    );
}
