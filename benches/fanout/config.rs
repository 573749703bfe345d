//! What to run, read once from the environment (`FANOUT_FIGURES`, `FANOUT_QUICK`,
//! `FANOUT_IDLE_SECS`) and handed down to every figure.

use std::env;

/// What to run, from the environment.
pub struct Config {
    pub figures: Vec<u32>,
    pub idle_secs: f64,
    pub quick: bool,
}

impl Config {
    pub fn from_env() -> Config {
        let quick = env::var("FANOUT_QUICK")
            .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "no" | "off"));
        let figures = env::var("FANOUT_FIGURES")
            .unwrap_or_else(|_| "1,2,3,4,5".into())
            .split(',')
            .filter_map(|f| f.trim().parse().ok())
            .collect();
        let idle_secs = env::var("FANOUT_IDLE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if quick { 1.0 } else { 10.0 });
        Config {
            figures,
            idle_secs,
            quick,
        }
    }
}
