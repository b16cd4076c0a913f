fn main() {
    let mut s = starling_state::MemState::new(
        std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(16),
    );
    let t = std::time::Instant::now();
    for b in 0..100u64 {
        let ws: starling_state::WriteSet = (0..10_000u64)
            .map(|i| {
                (
                    starling_state::key_hash(&(b * 10_000 + i).to_le_bytes()),
                    Some(vec![1u8; 100]),
                )
            })
            .collect();
        s.commit(&ws);
        if b % 20 == 19 {
            println!(
                "{} keys {:.0} upd/s",
                (b + 1) * 10_000,
                ((b + 1) * 10_000) as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
}
