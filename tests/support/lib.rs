//! Support for the workspace integration tests: starting a real `strand serve` process on
//! free ports in a fresh data directory, reading the addresses it prints, and stopping it
//! with SIGTERM or SIGKILL. [`kafka`] is a minimal blocking Kafka client for them, and
//! [`proxy`] a fault-injecting TCP proxy that cuts, blackholes or delays links; [`cluster`]
//! starts several nodes behind such proxies as one cluster.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod cluster;
pub mod kafka;
pub mod proxy;

/// How long a server gets to print its listeners or to exit.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `strand` binary under test: `$STRAND_BIN`, or the workspace's debug build (built
/// on first use when missing).
pub fn strand_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("STRAND_BIN") {
        return Ok(PathBuf::from(bin));
    }
    cargo_build(&["-p", "strand"])?;
    Ok(debug_dir()?.join("strand"))
}

/// The directory of the client's examples (`produce_orders`, `consume_orders`), built in
/// the debug profile.
pub fn example_bins() -> anyhow::Result<PathBuf> {
    cargo_build(&["-p", "strand-client", "--examples"])?;
    Ok(debug_dir()?.join("examples"))
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    Ok(Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf())
}

fn debug_dir() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| workspace_root().map(|r| r.join("target")), Ok)?;
    Ok(target.join("debug"))
}

/// `cargo build --quiet ARGS` in the workspace.
fn cargo_build(args: &[&str]) -> anyhow::Result<()> {
    let root = workspace_root()?;
    // Cargo describes the test's own package to it (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …);
    // ring's build script tracks some of those, so passing them on would make this build and
    // a plain `cargo build` rebuild strand in turn.
    let mut build = Command::new(env!("CARGO"));
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        {
            build.env_remove(name);
        }
    }
    let status = build
        .args(["build", "--quiet"])
        .args(args)
        .current_dir(&root)
        .status()
        .with_context(|| format!("running cargo build {args:?}"))?;
    if !status.success() {
        bail!("cargo build {args:?} failed: {status}");
    }
    Ok(())
}

/// A running `strand serve`, killed when dropped.
pub struct Strand {
    child: Child,
    /// Bound address of each listener, by name (`kafka`, `registry`, `admin`).
    pub addrs: HashMap<String, SocketAddr>,
    /// The data directory it serves.
    pub data_dir: PathBuf,
    stdout_lines: mpsc::Receiver<String>,
    /// Its stderr (the log), when started with [`Launch::capture_log`].
    log: Option<Arc<(Mutex<String>, Condvar)>>,
}

/// How to start a `strand serve` beyond flags and environment: whether to keep its log
/// for the test to read, and resource limits set in the child before it runs.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    capture_log: bool,
    log_file: Option<PathBuf>,
    limits: Vec<(RlimitResource, u64)>,
}

/// A resource limit the child may be started under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlimitResource {
    /// `RLIMIT_NOFILE`: open file descriptors.
    NoFile,
    /// `RLIMIT_FSIZE`: the largest file the process may write (beyond it writes fail
    /// with EFBIG; SIGXFSZ is ignored in the child so that it is not killed instead).
    FileSize,
    /// `RLIMIT_AS`: address space (as `prlimit --as` or `ulimit -v` set it), so that an
    /// allocation beyond it fails instead of being reserved lazily.
    AddressSpace,
}

impl Launch {
    /// Keeps the child's stderr (echoed to the test's) for [`Strand::wait_for_log`].
    pub fn capture_log(mut self) -> Self {
        self.capture_log = true;
        self
    }

    /// Appends the child's stderr (the log) and stdout to the file at `path` instead of
    /// echoing them, so that many processes side by side keep their logs apart.
    pub fn log_to(mut self, path: &Path) -> Self {
        self.log_file = Some(path.to_path_buf());
        self
    }

    /// Starts the child under a soft and hard limit of `value` for `resource`.
    pub fn limit(mut self, resource: RlimitResource, value: u64) -> Self {
        self.limits.push((resource, value));
        self
    }
}

impl Strand {
    /// Starts `strand serve` on free loopback ports over `data_dir`, with extra flags.
    pub fn start(data_dir: &Path, extra: &[&str]) -> anyhow::Result<Strand> {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// Like [`Strand::start`], with extra environment variables.
    pub fn start_with_env(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Strand> {
        Self::launch(data_dir, extra, env, Launch::default())
    }

    /// Like [`Strand::start_with_env`], with the options of `launch`.
    pub fn launch(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        launch: Launch,
    ) -> anyhow::Result<Strand> {
        let mut strand = Self::spawn(data_dir, extra, env, launch)?;
        strand.wait_started()?;
        Ok(strand)
    }

    /// Starts `strand serve` like [`Strand::launch`] without waiting for its listeners, so
    /// that several processes that need each other can start together; then call
    /// [`Strand::wait_started`].
    pub fn spawn(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        launch: Launch,
    ) -> anyhow::Result<Strand> {
        let mut cmd = Command::new(strand_bin()?);
        cmd.arg("serve").arg("--data-dir").arg(data_dir);
        for (flag, value) in [
            ("--kafka-addr", "127.0.0.1:0"),
            ("--registry-addr", "127.0.0.1:0"),
            ("--admin-addr", "127.0.0.1:0"),
            ("--rest-addr", "127.0.0.1:0"),
            ("--grpc-addr", "127.0.0.1:0"),
            ("--controller-addr", "127.0.0.1:0"),
        ] {
            if !extra.contains(&flag) && !env.iter().any(|(k, _)| flag_env(flag) == *k) {
                cmd.arg(flag).arg(value);
            }
        }
        cmd.args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log_file = match &launch.log_file {
            Some(path) => Some(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?,
            ),
            None => None,
        };
        cmd.stdout(Stdio::piped()).stderr(match &log_file {
            _ if launch.capture_log => Stdio::piped(),
            Some(file) => Stdio::from(file.try_clone()?),
            None => Stdio::inherit(),
        });
        if !launch.limits.is_empty() {
            let limits = launch.limits.clone();
            // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                    for &(resource, value) in &limits {
                        let resource = match resource {
                            RlimitResource::NoFile => libc::RLIMIT_NOFILE,
                            RlimitResource::FileSize => {
                                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                                libc::RLIMIT_FSIZE
                            }
                            RlimitResource::AddressSpace => libc::RLIMIT_AS,
                        };
                        let limit = libc::rlimit {
                            rlim_cur: value as libc::rlim_t,
                            rlim_max: value as libc::rlim_t,
                        };
                        if libc::setrlimit(resource, &limit) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().context("spawning strand serve")?;
        let log = if launch.capture_log {
            let stderr = child.stderr.take().context("strand stderr")?;
            let log = Arc::new((Mutex::new(String::new()), Condvar::new()));
            let shared = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    let (text, changed) = &*shared;
                    let mut text = text.lock().unwrap_or_else(|e| e.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                    changed.notify_all();
                }
            });
            Some(log)
        } else {
            None
        };
        let stdout = child.stdout.take().context("strand stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log_file = log_file;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(file) = &mut log_file {
                    use std::io::Write;
                    // One write per line: the child's log appends to the same file.
                    let _ = file.write_all(format!("{line}\n").as_bytes());
                }
                // The receiver goes once the listeners are read; the file keeps the rest.
                let _ = tx.send(line);
            }
        });
        Ok(Strand {
            child,
            addrs: HashMap::new(),
            data_dir: data_dir.to_path_buf(),
            stdout_lines: rx,
            log,
        })
    }

    /// Waits (bounded by [`START_TIMEOUT`]) until the server printed its kafka, registry
    /// and admin listeners.
    pub fn wait_started(&mut self) -> anyhow::Result<()> {
        self.wait_for_listeners(&["kafka", "registry", "admin"])
    }

    fn wait_for_listeners(&mut self, names: &[&str]) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while !names.iter().all(|n| self.addrs.contains_key(*n)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.stdout_lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let status = self.child.try_wait()?;
                    bail!("strand serve did not print its listeners (exit: {status:?})");
                }
            };
            if let Some((name, addr)) = line.split_once(" listening on ") {
                self.addrs.insert(name.to_string(), addr.trim().parse()?);
            }
        }
        Ok(())
    }

    /// Address of the named listener.
    pub fn addr(&self, name: &str) -> anyhow::Result<SocketAddr> {
        self.addrs
            .get(name)
            .copied()
            .with_context(|| format!("no {name} listener"))
    }

    /// Waits (bounded by `timeout`) until a line of the log contains every one of
    /// `words`, and returns that line; needs [`Launch::capture_log`].
    pub fn wait_for_log(&self, words: &[&str], timeout: Duration) -> anyhow::Result<String> {
        let (text, changed) = &**self.log.as_ref().context("the log is not captured")?;
        let deadline = Instant::now() + timeout;
        let mut text = text.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(line) = text.lines().find(|l| words.iter().all(|w| l.contains(w))) {
                return Ok(line.to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no log line with {words:?} within {timeout:?}");
            }
            text = changed
                .wait_timeout(text, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The server's resident set size in bytes (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .context("no VmRSS line")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kb * 1024)
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(mut self) -> anyhow::Result<ExitStatus> {
        signal(&self.child, "TERM")?;
        self.wait_exit()
    }

    /// Sends SIGKILL, as a crash would, and reaps the process.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    fn wait_exit(&mut self) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("strand serve did not exit within {START_TIMEOUT:?}");
            }
            // Child exit has no portable notification to wait on; this only paces the check.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Strand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn flag_env(flag: &str) -> String {
    format!(
        "STRAND_{}",
        flag.trim_start_matches("--")
            .replace('-', "_")
            .to_uppercase()
    )
}

fn signal(child: &Child, sig: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{sig} failed");
    }
    Ok(())
}

/// Runs a `strand` subcommand to completion (bounded), returning its exit status and output.
pub fn run_strand(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<std::process::Output> {
    let mut cmd = Command::new(strand_bin()?);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().context("spawning strand")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(START_TIMEOUT)
        .context("strand did not finish in time")?
        .context("waiting for strand")
}

/// A minimal HTTP/1.1 GET over a fresh TCP connection, returning status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(START_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .context("no status line")?
        .parse()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
