//! `strand serve` as a process: listeners, configuration precedence, the data directory
//! lock, and clean shutdown on a signal.

use strand_tests::{Strand, http_get, run_strand};

#[test]
fn serve_prints_bound_listeners_and_answers_health() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    for name in ["kafka", "registry", "admin"] {
        assert_ne!(strand.addr(name)?.port(), 0, "{name} bound port 0");
    }
    let (status, body) = http_get(strand.addr("admin")?, "/health")?;
    assert_eq!(status, 200);
    assert_eq!(body.trim(), "ok");
    let exit = strand.terminate()?;
    assert!(exit.success(), "SIGTERM exit: {exit}");
    Ok(())
}

#[test]
fn serve_creates_missing_data_dir() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("nested").join("data");
    let strand = Strand::start(&data, &[])?;
    assert!(data.is_dir());
    assert!(strand.terminate()?.success());
    Ok(())
}

#[test]
fn second_serve_on_same_data_dir_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = Strand::start(dir.path(), &[])?;
    let data = dir.path().to_string_lossy().into_owned();
    let out = run_strand(
        &[
            "serve",
            "--data-dir",
            &data,
            "--kafka-addr",
            "127.0.0.1:0",
            "--registry-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ],
        &[],
    )?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another strand process"),
        "{stderr}"
    );
    assert!(first.terminate()?.success());
    Ok(())
}

#[test]
fn environment_sets_listener_and_flag_overrides_environment() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let free = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = free.local_addr()?.port();
    drop(free);
    let admin = format!("127.0.0.1:{port}");
    let strand = Strand::start_with_env(
        dir.path(),
        &["--registry-addr", "127.0.0.1:0"],
        &[
            ("STRAND_ADMIN_ADDR", admin.as_str()),
            ("STRAND_REGISTRY_ADDR", "127.0.0.1:1"),
        ],
    )?;
    assert_eq!(strand.addr("admin")?.port(), port);
    assert_ne!(strand.addr("registry")?.port(), 1);
    assert!(strand.terminate()?.success());
    Ok(())
}

#[test]
fn taken_port_is_a_clear_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let data = dir.path().to_string_lossy().into_owned();
    let out = run_strand(
        &[
            "serve",
            "--data-dir",
            &data,
            "--kafka-addr",
            &addr,
            "--admin-addr",
            "127.0.0.1:0",
        ],
        &[],
    )?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("binding the kafka listener to {addr}")),
        "{stderr}"
    );
    Ok(())
}
