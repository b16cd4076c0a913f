//! Helpers shared by the multi-process tests: free loopback ports, processes killed on drop,
//! plain HTTP/1.1 requests, and bounded polling.
#![allow(dead_code, clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(120);

pub use starling_testkit::free_addr;

/// One HTTP/1.1 request with extra headers and a raw body; returns the status and body.
pub fn http_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let r = starling_testkit::http(addr, method, path, headers, body).ok()?;
    Some((r.status, r.body))
}

/// One HTTP/1.1 request; returns the status and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String)> {
    let (status, body) = http_bytes(addr, method, path, &[], body.unwrap_or("").as_bytes())?;
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Runs `starling <args>` in `dir`; returns what it printed, failing on an error.
pub fn starling(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_starling"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn get(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    match http(addr, "GET", path, None)? {
        (200, b) => serde_json::from_str(&b).ok(),
        _ => None,
    }
}

/// Every test that runs a network of processes holds this first, so they run one at a time:
/// on a 2-core machine, several networks side by side starve each other past any timeout.
/// (Timeouts count from when a test holds it.)
pub fn one_network_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Polls `f` until it returns `Some`, failing after [`TIMEOUT`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Spawns `command` and returns once it prints that its API is listening (which a node or
/// devnet does once everything runs), with the lines it printed before.
pub fn spawn_until_api_lines(command: &mut Command) -> (Child, Vec<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The last lines of its log, to say why if it stops before serving.
    let log: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>> =
        std::sync::Arc::default();
    let errors: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let reader = {
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = log.clone();
        let errors = errors.clone();
        std::thread::spawn(move || {
            // Drained to the end whatever it holds, so the process never blocks on the pipe.
            let mut stderr = stderr;
            let mut line = Vec::new();
            while matches!(stderr.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                // Why it stopped, kept even when a backtrace follows and fills the tail.
                if text.starts_with("Error") || text.contains("panicked") {
                    let mut why = errors.lock().unwrap_or_else(|p| p.into_inner());
                    if why.len() < 10 {
                        why.push(text.clone());
                    }
                }
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                if log.len() == 30 {
                    log.pop_front();
                }
                log.push_back(text);
                line.clear();
            }
        })
    };
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let ready = lines.any(|l| match l {
        Ok(l) => {
            let done = l.contains("API listening");
            seen.push(l);
            done
        }
        Err(_) => false,
    });
    if !ready {
        let _ = child.wait();
        // It exited: its log ends, and the reader with it.
        let _ = reader.join();
        let log: Vec<String> = log.lock().unwrap().iter().cloned().collect();
        let errors = errors.lock().unwrap().join("\n");
        panic!(
            "{command:?} exited before serving its API:\n{errors}\nits log ended:\n{}",
            log.join("\n")
        );
    }
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, seen)
}

pub fn spawn_until_api(command: &mut Command) -> Child {
    spawn_until_api_lines(command).0
}

/// A child process killed (SIGKILL) when dropped, also when a check fails.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
