//! The `strand` client subcommands (`topics`, `groups`, `schemas`, `produce`, `consume`) run
//! as a user runs them: the real binary, against a real `strand serve`, checked by what they
//! print and how they exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use apache_avro::Schema;
use apache_avro::types::Value;
use strand_client::{
    AvroSerializer, AvroSerializerConfig, ProducerConfig, ProducerRecord, RawProducer,
    RegistryClient, RegistryConfig,
};
use strand_tests::{Strand, strand_bin};

/// Longest any one CLI invocation may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

struct Server {
    strand: Strand,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let strand = Strand::start(dir.path(), &["--group-initial-rebalance-delay-ms", "0"])?;
        Ok(Server { strand, _dir: dir })
    }

    /// Stops the server cleanly and starts it again over the same data directory.
    fn restart(self) -> anyhow::Result<Server> {
        let Server { strand, _dir: dir } = self;
        let status = strand.terminate()?;
        if !status.success() {
            bail!("strand serve exited with {status} on SIGTERM");
        }
        let strand = Strand::start(dir.path(), &["--group-initial-rebalance-delay-ms", "0"])?;
        Ok(Server { strand, _dir: dir })
    }

    fn bootstrap(&self) -> anyhow::Result<String> {
        Ok(self.strand.addr("kafka")?.to_string())
    }

    fn registry(&self) -> anyhow::Result<String> {
        Ok(format!("http://{}", self.strand.addr("registry")?))
    }

    /// Runs `strand ARGS` against this server, feeding `stdin`.
    fn run(&self, args: &[&str], stdin: &str) -> anyhow::Result<Run> {
        run(
            args,
            stdin,
            &[
                ("STRAND_BOOTSTRAP", &self.bootstrap()?),
                ("STRAND_REGISTRY", &self.registry()?),
            ],
        )
    }

    /// Like [`Server::run`], failing unless the command succeeds.
    fn ok(&self, args: &[&str], stdin: &str) -> anyhow::Result<Run> {
        let run = self.run(args, stdin)?;
        if !run.success {
            bail!("strand {args:?} failed: {}", run.stderr);
        }
        Ok(run)
    }
}

/// What one `strand` invocation did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// The binary, looked up (and built if needed) once rather than per invocation.
fn strand() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    if let Some(bin) = BIN.get() {
        return Ok(bin.clone());
    }
    let bin = strand_bin()?;
    Ok(BIN.get_or_init(|| bin).clone())
}

fn run(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> anyhow::Result<Run> {
    let started = Instant::now();
    let mut cmd = Command::new(strand()?);
    cmd.args(args)
        .env_remove("STRAND_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("spawning strand")?;
    let mut input = child.stdin.take().context("stdin")?;
    let stdin = stdin.to_string();
    // Written from a thread so a command that exits early cannot block the test on a pipe.
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output: Output = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(output) => output.context("waiting for strand")?,
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            bail!("strand {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
    };
    Ok(Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    })
}

/// Lines of a table's body (header dropped), split into whitespace-separated cells.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn topics_are_created_listed_described_altered_and_deleted() -> anyhow::Result<()> {
    let server = Server::start()?;
    let created = server.ok(
        &[
            "topics",
            "create",
            "payments",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        "",
    )?;
    assert!(
        created.stderr.contains("created topic payments"),
        "{}",
        created.stderr
    );

    let listed = server.ok(&["topics", "list"], "")?;
    assert!(
        table_rows(&listed.stdout).contains(&vec!["payments".to_string(), "3".to_string()]),
        "{}",
        listed.stdout
    );
    // Internal topics are hidden unless asked for, the registry's `_schemas` among them.
    let internal = ["__consumer_offsets", "_schemas"];
    let names = |text: &str| -> Vec<String> {
        table_rows(text)
            .into_iter()
            .filter_map(|row| row.into_iter().next())
            .collect()
    };
    for topic in internal {
        assert!(
            !names(&listed.stdout).contains(&topic.to_string()),
            "{}",
            listed.stdout
        );
    }
    let all = server.ok(&["topics", "list", "--internal"], "")?;
    for topic in internal {
        assert!(
            names(&all.stdout).contains(&topic.to_string()),
            "{}",
            all.stdout
        );
    }

    let described = server.ok(&["topics", "describe", "payments"], "")?;
    assert!(
        described
            .stdout
            .starts_with("Topic: payments  Partitions: 3"),
        "{}",
        described.stdout
    );
    assert!(
        described
            .stdout
            .contains("PARTITION  LEADER  LOG-START  HIGH-WATERMARK")
    );
    let config_line = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
    };
    assert_eq!(
        config_line(&described.stdout, "retention.ms").as_deref(),
        Some("3600000")
    );

    let json = server.ok(&["topics", "describe", "payments", "--json"], "")?;
    let json: serde_json::Value = serde_json::from_str(&json.stdout)?;
    assert_eq!(
        json["partitions"].as_array().map(Vec::len),
        Some(3),
        "{json}"
    );
    assert_eq!(json["partitions"][0]["high_watermark"], 0, "{json}");
    assert_eq!(json["configs"]["retention.ms"], "3600000", "{json}");

    server.ok(
        &[
            "topics",
            "alter-config",
            "payments",
            "--set",
            "retention.ms=60000",
            "--set",
            "cleanup.policy=compact",
        ],
        "",
    )?;
    let altered = server.ok(&["topics", "describe", "payments"], "")?;
    assert_eq!(
        config_line(&altered.stdout, "retention.ms").as_deref(),
        Some("60000")
    );
    assert_eq!(
        config_line(&altered.stdout, "cleanup.policy").as_deref(),
        Some("compact")
    );

    let existing = server.run(&["topics", "create", "payments"], "")?;
    assert!(!existing.success, "creating an existing topic must fail");
    assert!(
        existing.stderr.contains("TopicAlreadyExists"),
        "{}",
        existing.stderr
    );

    server.ok(&["topics", "delete", "payments"], "")?;
    let listed = server.ok(&["topics", "list"], "")?;
    assert!(!listed.stdout.contains("payments"), "{}", listed.stdout);
    let gone = server.run(&["topics", "describe", "payments"], "")?;
    assert!(!gone.success);
    assert!(
        gone.stderr.contains("topic payments does not exist"),
        "{}",
        gone.stderr
    );
    Ok(())
}

#[test]
fn produced_lines_are_consumed_back_with_their_keys() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.ok(&["topics", "create", "lines", "--partitions", "3"], "")?;
    let input: String = (0..30)
        .map(|i| format!("user-{}:event {i}\n", i % 5))
        .collect();
    let produced = server.ok(&["produce", "lines", "--key-separator", ":"], &input)?;
    assert!(
        produced.stderr.contains("produced 30 records to lines"),
        "{}",
        produced.stderr
    );

    let consumed = server.ok(
        &[
            "consume",
            "lines",
            "--from-beginning",
            "--count",
            "30",
            "--print-key",
            "--key-separator",
            "=",
        ],
        "",
    )?;
    let mut got: Vec<&str> = consumed.stdout.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..30)
        .map(|i| format!("user-{}=event {i}", i % 5))
        .collect();
    want.sort();
    assert_eq!(got, want);

    // Same key, same partition: each key's events come back in the order written.
    let order: Vec<&str> = consumed
        .stdout
        .lines()
        .filter(|l| l.starts_with("user-3="))
        .collect();
    assert_eq!(
        order,
        [
            "user-3=event 3",
            "user-3=event 8",
            "user-3=event 13",
            "user-3=event 18",
            "user-3=event 23",
            "user-3=event 28"
        ]
    );

    // --partition pins records; the summary says where they went.
    let pinned = server.ok(
        &["produce", "lines", "--partition", "2", "--acks", "1"],
        "a\nb\n",
    )?;
    assert!(
        pinned.stderr.contains("(partition:records 2:2)"),
        "{}",
        pinned.stderr
    );
    Ok(())
}

#[test]
fn registered_order_schema_is_returned_and_decodes_avro_records() -> anyhow::Result<()> {
    let server = Server::start()?;
    let avsc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/order.avsc");
    let avsc = avsc.to_str().context("path")?;
    let registered = server.ok(&["schemas", "register", "orders-value", "--file", avsc], "")?;
    let id: u32 = registered
        .stdout
        .trim()
        .parse()
        .context("schema id on stdout")?;

    let subjects = server.ok(&["schemas", "subjects"], "")?;
    assert_eq!(subjects.stdout, "orders-value\n");
    let versions = server.ok(&["schemas", "versions", "orders-value"], "")?;
    assert_eq!(versions.stdout, "1\n");
    let got = server.ok(&["schemas", "get", "orders-value"], "")?;
    assert!(
        got.stderr.contains(&format!("version 1 schema id {id}")),
        "{}",
        got.stderr
    );
    let want = Schema::parse_str(&std::fs::read_to_string(avsc)?)?;
    assert_eq!(
        Schema::parse_str(&got.stdout)?,
        want,
        "get returns the registered schema"
    );

    let same = server.ok(
        &["schemas", "compatibility", "orders-value", "--file", avsc],
        "",
    )?;
    assert_eq!(same.stdout, "compatible\n");
    let dir = tempfile::tempdir()?;
    let breaking = dir.path().join("breaking.avsc");
    std::fs::write(
        &breaking,
        r#"{"type":"record","name":"Order","namespace":"strand.examples",
            "fields":[{"name":"order_id","type":"string"},{"name":"priority","type":"int"}]}"#,
    )?;
    let breaking = breaking.to_str().context("path")?;
    let verdict = server.run(
        &[
            "schemas",
            "compatibility",
            "orders-value",
            "--file",
            breaking,
        ],
        "",
    )?;
    assert!(!verdict.success, "an incompatible schema exits non-zero");
    assert!(verdict.stderr.contains("priority"), "{}", verdict.stderr);
    // Registering it fails with the same reasons, not a dump of the old schema.
    let refused = server.run(
        &["schemas", "register", "orders-value", "--file", breaking],
        "",
    )?;
    assert!(!refused.success, "an incompatible schema is not registered");
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with(&format!(
            "error: {breaking} is incompatible with orders-value: {{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'"
        )),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("'priority'"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains("oldSchema") && !refused.stderr.contains("customer_id"),
        "{}",
        refused.stderr
    );

    // Avro records written by the Rust client come out as JSON lines with --avro.
    server.ok(&["topics", "create", "orders", "--partitions", "1"], "")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let registry = RegistryClient::new(RegistryConfig::new(server.registry()?))?;
        let serializer = AvroSerializer::new(registry, want, AvroSerializerConfig::default());
        let producer = RawProducer::new(ProducerConfig::new(&server.bootstrap()?)).await?;
        for i in 0..2i64 {
            let order = Value::Record(vec![
                ("order_id".into(), Value::String(format!("o-{i}"))),
                ("customer_id".into(), Value::String("c-7".into())),
                ("amount_cents".into(), Value::Long(1250 + i)),
                ("currency".into(), Value::String("EUR".into())),
                (
                    "created_at".into(),
                    Value::TimestampMillis(1_700_000_000_000),
                ),
            ]);
            let bytes = serializer.serialize_value("orders", &order).await?;
            producer
                .send(ProducerRecord::new("orders", bytes))
                .await?
                .await?;
        }
        producer.close().await?;
        anyhow::Ok(())
    })?;
    // JSON lines produced with --avro-schema are Avro too: the three read back alike.
    let json_order = r#"{"order_id":"o-2","customer_id":"c-8","amount_cents":99,"currency":"USD","created_at":1700000000001}"#;
    server.ok(
        &[
            "produce",
            "orders",
            "--key-separator",
            "|",
            "--avro-schema",
            avsc,
        ],
        &format!("o-2|{json_order}\n"),
    )?;
    let decoded = server.ok(
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--count",
            "3",
            "--avro",
        ],
        "",
    )?;
    assert_eq!(
        decoded.stdout,
        format!(
            "{{\"order_id\":\"o-0\",\"customer_id\":\"c-7\",\"amount_cents\":1250,\"currency\":\"EUR\",\"created_at\":1700000000000}}\n\
             {{\"order_id\":\"o-1\",\"customer_id\":\"c-7\",\"amount_cents\":1251,\"currency\":\"EUR\",\"created_at\":1700000000000}}\n\
             {json_order}\n"
        )
    );
    let versions = server.ok(&["schemas", "versions", "orders-value"], "")?;
    assert_eq!(
        versions.stdout, "1\n",
        "the same schema is not registered twice"
    );

    // A line that does not fit the schema is refused before anything is sent, naming the
    // field and what was wrong with it in plain words.
    for (line, error) in [
        (
            r#"{"order_id":"o-3"}"#,
            "error: line 1, field customer_id: missing, and the schema gives it no default",
        ),
        (
            r#"{"order_id":"o-3","customer_id":"c-1","amount_cents":"five","currency":"EUR","created_at":0}"#,
            r#"error: line 1, field amount_cents: expected a long, got the string "five""#,
        ),
        (
            r#"{"order_id":"o-3","customer_id":"c-1","amount_cents":5,"currency":"EUR","created_at":0,"colour":"red"}"#,
            "error: line 1, field colour: record Order has no such field",
        ),
        (
            "[1, 2]",
            "error: line 1: expected a record Order (a JSON object), got an array",
        ),
    ] {
        let bad = server.run(
            &["produce", "orders", "--avro-schema", avsc],
            &format!("{line}\n"),
        )?;
        assert!(!bad.success);
        assert!(
            bad.stderr.lines().any(|l| l == error),
            "{line}: {}",
            bad.stderr
        );
    }
    let sent = server.ok(&["topics", "describe", "orders", "--json"], "")?;
    let sent: serde_json::Value = serde_json::from_str(&sent.stdout)?;
    assert_eq!(sent["partitions"][0]["high_watermark"], 3, "{sent}");

    server.ok(&["schemas", "delete", "orders-value"], "")?;
    let missing = server.run(&["schemas", "get", "orders-value"], "")?;
    assert!(!missing.success);
    assert!(
        missing
            .stderr
            .contains("subject orders-value has no registered schema"),
        "{}",
        missing.stderr
    );
    Ok(())
}

#[test]
fn groups_show_members_committed_offsets_and_lag() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.ok(&["topics", "create", "clicks", "--partitions", "2"], "")?;
    // All on partition 0, so the first reader's progress is all in one partition.
    let input: String = (0..10).map(|i| format!("click {i}\n")).collect();
    server.ok(&["produce", "clicks", "--partition", "0"], &input)?;

    let consumed = server.ok(
        &[
            "consume",
            "clicks",
            "--group",
            "readers",
            "--from-beginning",
            "--count",
            "4",
        ],
        "",
    )?;
    assert_eq!(consumed.stdout.lines().count(), 4);

    let listed = server.ok(&["groups", "list"], "")?;
    assert!(
        table_rows(&listed.stdout).contains(&vec!["readers".to_string()]),
        "{}",
        listed.stdout
    );
    // Offsets are committed for exactly the records printed: 4 consumed, 6 left.
    let described = server.ok(&["groups", "describe", "readers"], "")?;
    assert!(
        described.stdout.starts_with("Group: readers  State: Empty"),
        "{}",
        described.stdout
    );
    assert!(
        described
            .stdout
            .contains("\nConsumer group 'readers' has no active members.\n"),
        "{}",
        described.stdout
    );
    let offsets: Vec<Vec<String>> = described
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("TOPIC"))
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(
        offsets,
        vec![["clicks", "0", "4", "10", "6"].map(String::from).to_vec()],
        "{}",
        described.stdout
    );

    // A second run of the group resumes where the first stopped.
    let rest = server.ok(
        &["consume", "clicks", "--group", "readers", "--count", "6"],
        "",
    )?;
    let mut all: Vec<&str> = consumed.stdout.lines().chain(rest.stdout.lines()).collect();
    all.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("click {i}")).collect();
    want.sort();
    assert_eq!(all, want, "every record once across the two runs");

    // A live member shows up with its partitions.
    let bootstrap = server.bootstrap()?;
    let mut live = Command::new(strand()?)
        .args([
            "consume",
            "clicks",
            "--group",
            "live",
            "--bootstrap",
            &bootstrap,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let described = loop {
        // Until the member's JoinGroup arrives, the group does not exist yet.
        let d = server.run(&["groups", "describe", "live"], "")?;
        if d.success && d.stdout.contains("State: Stable") && d.stdout.contains("clicks-0,clicks-1")
        {
            break d;
        }
        if Instant::now() > deadline {
            let _ = live.kill();
            bail!(
                "the live member never became stable: {}{}",
                d.stdout,
                d.stderr
            );
        }
    };
    // Assigned partitions without a commit show up too, with no committed offset or lag.
    let json = server.ok(&["groups", "describe", "live", "--json"], "")?;
    live.kill()?;
    live.wait()?;
    let json: serde_json::Value = serde_json::from_str(&json.stdout)?;
    assert_eq!(json["members"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(
        json["offsets"],
        serde_json::json!([
            {"topic": "clicks", "partition": 0, "committed": null, "end": 10, "lag": null},
            {"topic": "clicks", "partition": 1, "committed": null, "end": 0, "lag": null},
        ])
    );
    assert!(
        described.stdout.contains("Members: 1"),
        "{}",
        described.stdout
    );
    assert!(
        described.stdout.contains("strand-cli"),
        "{}",
        described.stdout
    );

    server.ok(&["groups", "delete", "readers"], "")?;
    let listed = server.ok(&["groups", "list"], "")?;
    assert!(!listed.stdout.contains("readers"), "{}", listed.stdout);
    Ok(())
}

#[test]
fn messages_are_plain_lines_with_plurals_and_logs_have_no_colour_codes() -> anyhow::Result<()> {
    let server = Server::start()?;
    let created = server.ok(&["topics", "create", "one", "--partitions", "1"], "")?;
    assert_eq!(created.stderr, "created topic one with 1 partition\n");
    let created = server.ok(&["topics", "create", "two", "--partitions", "2"], "")?;
    assert_eq!(created.stderr, "created topic two with 2 partitions\n");
    let produced = server.ok(&["produce", "one"], "a\n")?;
    assert_eq!(
        produced.stderr,
        "produced 1 record to one (partition:records 0:1)\n"
    );
    let produced = server.ok(&["produce", "one"], "b\nc\n")?;
    assert_eq!(
        produced.stderr,
        "produced 2 records to one (partition:records 0:2)\n"
    );
    let altered = server.ok(
        &[
            "topics",
            "alter-config",
            "one",
            "--set",
            "retention.ms=60000",
        ],
        "",
    )?;
    assert_eq!(altered.stderr, "altered 1 config of topic one\n");
    // stderr is a pipe here, not a terminal: log lines carry no colour codes. (The
    // client logs its retries of an unreachable broker at debug.)
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let logged = run(
        &["topics", "list", "--retry-timeout-ms", "300"],
        "",
        &[
            ("STRAND_BOOTSTRAP", &format!("127.0.0.1:{port}")),
            ("STRAND_LOG", "debug"),
        ],
    )?;
    assert!(!logged.success, "{}", logged.stderr);
    assert!(logged.stderr.contains("DEBUG"), "{}", logged.stderr);
    assert!(!logged.stderr.contains('\x1b'), "{:?}", logged.stderr);
    Ok(())
}

#[test]
fn serve_help_does_not_promise_metrics() -> anyhow::Result<()> {
    let help = run(&["serve", "--help"], "", &[])?;
    assert!(help.success, "{}", help.stderr);
    assert!(
        help.stdout.contains("/health and /ready"),
        "{}",
        help.stdout
    );
    // /metrics is not served yet: every mention says so.
    for line in help.stdout.lines().filter(|l| l.contains("metrics")) {
        assert!(line.contains("not yet"), "{line}");
    }
    Ok(())
}

#[test]
fn deleted_group_stays_deleted_after_restart() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.ok(&["topics", "create", "t1", "--partitions", "1"], "")?;
    server.ok(&["produce", "t1"], "one\ntwo\n")?;
    server.ok(
        &[
            "consume",
            "t1",
            "--group",
            "g1",
            "--from-beginning",
            "--count",
            "1",
        ],
        "",
    )?;
    server.ok(&["groups", "delete", "g1"], "")?;
    let server = server.restart()?;
    let listed = server.ok(&["groups", "list"], "")?;
    assert!(
        !table_rows(&listed.stdout).contains(&vec!["g1".to_string()]),
        "{}",
        listed.stdout
    );
    let described = server.run(&["groups", "describe", "g1"], "")?;
    assert!(!described.success, "{}", described.stdout);
    Ok(())
}

#[test]
fn bad_input_fails_with_one_clear_line_and_no_panic() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.ok(&["topics", "create", "t", "--partitions", "1"], "")?;
    // Exactly one error line saying what is wrong; other stderr lines are summaries.
    let check = |run: Run, expect: &str| {
        assert!(!run.success, "expected failure with {expect:?}");
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{}", run.stderr);
        assert!(errors[0].contains(expect), "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    };
    check(
        server.run(&["topics", "describe", "nope"], "")?,
        "topic nope does not exist",
    );
    check(
        server.run(&["produce", "nope"], "x\n")?,
        "topic nope does not exist",
    );
    check(
        server.run(&["consume", "nope", "--count", "1"], "")?,
        "topic nope does not exist",
    );
    check(
        server.run(
            &["produce", "t", "--key-separator", ":"],
            "k:v\nno separator\n",
        )?,
        "line 2 has no key separator",
    );
    check(
        server.run(&["produce", "t", "--partition", "5"], "x\n")?,
        "topic t has no partition 5",
    );
    // The line before the bad one was delivered, and it is not Avro.
    check(
        server.run(
            &["consume", "t", "--from-beginning", "--count", "1", "--avro"],
            "",
        )?,
        "not Confluent-framed Avro",
    );
    check(
        server.run(&["consume", "t", "--count", "1", "--timeout-ms", "300"], "")?,
        "only 0 of 1 records arrived",
    );
    check(
        server.run(
            &["schemas", "register", "s", "--file", "/nonexistent.avsc"],
            "",
        )?,
        "reading /nonexistent.avsc",
    );

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let unreachable = format!("127.0.0.1:{port}");
    let run = run(
        &["topics", "list", "--retry-timeout-ms", "1000"],
        "",
        &[("STRAND_BOOTSTRAP", &unreachable)],
    )?;
    assert!(run.took < Duration::from_secs(10), "took {:?}", run.took);
    check(run, &format!("cannot connect to broker {unreachable}"));
    let run = run_registry_unreachable(&unreachable)?;
    check(run, "unreachable");
    Ok(())
}

fn run_registry_unreachable(addr: &str) -> anyhow::Result<Run> {
    run(
        &["schemas", "subjects"],
        "",
        &[("STRAND_REGISTRY", &format!("http://{addr}"))],
    )
}

#[test]
fn json_schema_lines_are_validated_framed_and_decoded() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.ok(&["topics", "create", "events", "--partitions", "1"], "")?;
    let dir = tempfile::tempdir()?;
    let schema = dir.path().join("event.json");
    std::fs::write(
        &schema,
        r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
            "properties":{"kind":{"type":"string","enum":["click","view"]},"n":{"type":"integer","minimum":0}},
            "required":["kind","n"],"additionalProperties":false}"#,
    )?;
    let schema = schema.to_str().context("path")?;
    let lines = "{\"kind\":\"click\",\"n\":1}\n{\"kind\":\"view\",\"n\":2}\n";
    server.ok(&["produce", "events", "--json-schema", schema], lines)?;
    // A value the schema refuses is not sent, and says why.
    let bad = server.run(
        &["produce", "events", "--json-schema", schema],
        "{\"kind\":\"scroll\",\"n\":3}\n",
    )?;
    assert!(!bad.success);
    assert!(
        bad.stderr.contains("line 1") && bad.stderr.contains("scroll"),
        "{}",
        bad.stderr
    );

    // A value framed by the Rust client's serializer reads back alike.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let registry = RegistryClient::new(RegistryConfig::new(server.registry()?))?;
        let text = std::fs::read_to_string(schema)?;
        let serializer = strand_client::JsonSerializer::new(
            registry.clone(),
            &text,
            strand_client::JsonSerializerConfig::default(),
        )?;
        let bytes = serializer
            .serialize_value("events", &serde_json::json!({"kind": "view", "n": 3}))
            .await?;
        let producer = RawProducer::new(ProducerConfig::new(&server.bootstrap()?)).await?;
        producer
            .send(ProducerRecord::new("events", bytes))
            .await?
            .await?;
        producer.close().await?;
        let latest = registry.latest_version("events-value").await?;
        let (_, schema_type) = registry.schema_with_type_by_id(latest.id).await?;
        assert_eq!(schema_type.as_deref(), Some("JSON"));
        anyhow::Ok(())
    })?;
    let decoded = server.ok(
        &[
            "consume",
            "events",
            "--from-beginning",
            "--count",
            "3",
            "--json-schema",
        ],
        "",
    )?;
    assert_eq!(
        decoded.stdout,
        "{\"kind\":\"click\",\"n\":1}\n{\"kind\":\"view\",\"n\":2}\n{\"kind\":\"view\",\"n\":3}\n"
    );
    let versions = server.ok(&["schemas", "versions", "events-value"], "")?;
    assert_eq!(versions.stdout, "1\n", "one schema, registered once");
    Ok(())
}

#[test]
fn protobuf_lines_are_framed_with_message_indexes_and_decoded() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.ok(&["topics", "create", "clicks", "--partitions", "1"], "")?;
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("page.proto");
    std::fs::write(
        &page,
        "syntax = \"proto3\";\npackage web;\nmessage Page { string url = 1; }\n",
    )?;
    let schema = dir.path().join("click.proto");
    std::fs::write(
        &schema,
        "syntax = \"proto3\";\npackage web;\nimport \"web/page.proto\";\nmessage Session { string id = 1; }\nmessage Click { string user = 1; int32 n = 2; Page page = 3; }\n",
    )?;
    let schema = schema.to_str().context("path")?;
    let import = format!("web/page.proto={}", page.to_str().context("path")?);
    let args = [
        "produce",
        "clicks",
        "--protobuf-schema",
        schema,
        "--message",
        "web.Click",
        "--proto-import",
        &import,
    ];
    let lines =
        "{\"user\":\"ann\",\"n\":1,\"page\":{\"url\":\"/a\"}}\n{\"user\":\"bob\",\"n\":2}\n";
    server.ok(&args, lines)?;
    // A line that is not the message is not sent, and says where.
    let bad = server.run(&args, "{\"user\":\"cy\",\"clicks\":3}\n")?;
    assert!(!bad.success);
    assert!(
        bad.stderr.contains("line 1") && bad.stderr.contains("web.Click"),
        "{}",
        bad.stderr
    );
    // The raw record is Confluent's frame: magic, id 2 (the import got 1), indexes [1].
    let raw = server.ok(
        &["consume", "clicks", "--from-beginning", "--count", "1"],
        "",
    )?;
    assert!(
        raw.stdout.as_bytes().starts_with(&[0, 0, 0, 0, 2, 2, 2]),
        "{:?}",
        raw.stdout
    );
    let decoded = server.ok(
        &[
            "consume",
            "clicks",
            "--from-beginning",
            "--count",
            "2",
            "--protobuf",
        ],
        "",
    )?;
    assert_eq!(
        decoded.stdout,
        "{\"user\":\"ann\",\"n\":1,\"page\":{\"url\":\"/a\"}}\n{\"user\":\"bob\",\"n\":2}\n"
    );
    let subjects = server.ok(&["schemas", "subjects"], "")?;
    assert!(
        subjects.stdout.contains("web/page.proto") && subjects.stdout.contains("clicks-value"),
        "{}",
        subjects.stdout
    );
    Ok(())
}
