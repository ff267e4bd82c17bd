//! The examples of docs/cli.md and of the README's "Try it" section, run as written against
//! a real `strand serve`, so that the documents cannot drift from what the commands do.
//!
//! How a document's code blocks are read:
//! - ```` ```console ```` is a transcript: each `$ ` line is a command (a line ending in `\`
//!   continues on the next), and the lines after it, up to the next `$ `, are what it prints
//!   (stdout and stderr together). In those lines `…` stands for any text within the line,
//!   and a line that is only `…` for any number of lines; runs of spaces compare as one, so
//!   tables need not be aligned to the column. A command whose output has a line starting
//!   with `error: ` must fail; every other one must succeed.
//! - ```` ```sh ```` is a script that must succeed; ```` ```sh no-run ```` (a synopsis or an
//!   install step) is not run.
//! - A block whose info string has `file=NAME` (```` ```json file=breaking.avsc ````) is
//!   written to NAME in the working directory, for later commands to use.
//!
//! Commands run in bash, in a fresh directory where `schemas/` is the repository's, with the
//! worktree's `strand` and the client examples first on PATH. The documents' default
//! addresses (`127.0.0.1:9092`, `127.0.0.1:8081`) are rewritten to the test server's, and
//! `cargo run -p strand-client --example NAME --` runs the built example. Commands using
//! kcat are skipped (and say so) when kcat is not installed; scripts/test installs it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use strand_tests::{Strand, example_bins, strand_bin};

/// Longest one documented command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The whole-line wildcard, and the in-line one.
const ELLIPSIS: &str = "…";

/// One fenced code block of a document.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    /// The words after the opening fence (`console`, `sh no-run`, `json file=a.avsc`).
    info: Vec<String>,
    /// Line number of the opening fence, for messages.
    line: usize,
    lines: Vec<String>,
}

/// A documented command and what it prints.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    line: usize,
    command: String,
    output: Vec<String>,
}

/// The fenced code blocks of `text`, whose first line is line `first_line` of its document.
fn blocks(text: &str, first_line: usize) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let i = i + first_line - 1;
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.split_whitespace().map(String::from).collect(),
                    line: i + 1,
                    lines: Vec::new(),
                });
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(block), None) => block.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    blocks
}

/// The part of a Markdown document under the heading `heading` (up to the next heading of
/// the same or a higher level), and the line number it starts at.
fn section<'a>(text: &'a str, heading: &str) -> anyhow::Result<(usize, &'a str)> {
    let start = text
        .find(&format!("\n{heading}\n"))
        .with_context(|| format!("no heading {heading:?}"))?
        + 1;
    let level = heading.chars().take_while(|c| *c == '#').count();
    let rest = &text[start + heading.len()..];
    let end = rest
        .match_indices("\n#")
        .find(|(at, _)| {
            let hashes = rest[at + 1..].chars().take_while(|c| *c == '#').count();
            hashes <= level && rest[at + 1 + hashes..].starts_with(' ')
        })
        .map_or(rest.len(), |(at, _)| at);
    let line = text[..start].lines().count() + 1;
    Ok((line, &text[start..start + heading.len() + end]))
}

/// The commands of a transcript with their outputs.
fn transcript(block: &Block) -> anyhow::Result<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continuing = false;
    for (i, line) in block.lines.iter().enumerate() {
        let number = block.line + 1 + i;
        if continuing {
            let step = steps.last_mut().context("continuation without a command")?;
            step.command.push('\n');
            step.command.push_str(line);
            continuing = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: number,
                command: command.to_string(),
                output: Vec::new(),
            });
            continuing = line.ends_with('\\');
        } else {
            match steps.last_mut() {
                Some(step) => step.output.push(line.clone()),
                None => bail!("line {number}: a transcript starts with a `$ ` command"),
            }
        }
    }
    Ok(steps)
}

/// Whether one output line matches its documented form (`…` for any text).
fn line_matches(expected: &str, actual: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (expected, actual) = (squeeze(expected), squeeze(actual));
    let mut parts = expected.split(ELLIPSIS);
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Whether the output matches its documented form (a line `…` for any lines).
fn output_matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == ELLIPSIS => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => match actual.split_first() {
            Some((line, more)) => line_matches(first, line) && output_matches(rest, more),
            None => false,
        },
    }
}

/// A documented text with the documents' default addresses replaced by the server's.
struct Rewrite {
    kafka: String,
    registry: String,
}

impl Rewrite {
    fn apply(&self, text: &str) -> String {
        let text = text
            .replace("127.0.0.1:9092", &self.kafka)
            .replace("127.0.0.1:8081", &self.registry);
        // `cargo run -p strand-client --example NAME -- ARGS` → `NAME --bootstrap … ARGS`.
        let mut out = String::new();
        let mut rest = text.as_str();
        let prefix = "cargo run -p strand-client --example ";
        while let Some(at) = rest.find(prefix) {
            out.push_str(&rest[..at]);
            let after = &rest[at + prefix.len()..];
            let name_end = after.find(char::is_whitespace).unwrap_or(after.len());
            let name = &after[..name_end];
            let mut args = &after[name_end..];
            let trimmed = args.trim_start();
            if trimmed == "--" || trimmed.starts_with("-- ") {
                args = &trimmed[2..];
            }
            out.push_str(&format!(
                "{name} --bootstrap {} --registry http://{}",
                self.kafka, self.registry
            ));
            rest = args;
            if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                out.push(' ');
            }
        }
        out.push_str(rest);
        out
    }
}

/// A document being run: its working directory, server and tools.
struct Runner {
    doc: String,
    work: tempfile::TempDir,
    path: String,
    rewrite: Rewrite,
    have_kcat: bool,
    _bin: tempfile::TempDir,
    _data: tempfile::TempDir,
    _strand: Strand,
}

impl Runner {
    fn start(doc: &str) -> anyhow::Result<Runner> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("workspace root")?;
        let bin = tempfile::tempdir()?;
        std::os::unix::fs::symlink(strand_bin()?, bin.path().join("strand"))?;
        let examples = example_bins()?;
        for name in ["produce_orders", "consume_orders"] {
            std::os::unix::fs::symlink(examples.join(name), bin.path().join(name))?;
        }
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let work = tempfile::tempdir()?;
        std::os::unix::fs::symlink(root.join("schemas"), work.path().join("schemas"))?;
        let data = tempfile::tempdir()?;
        let strand = Strand::start(data.path(), &["--group-initial-rebalance-delay-ms", "0"])?;
        let rewrite = Rewrite {
            kafka: strand.addr("kafka")?.to_string(),
            registry: strand.addr("registry")?.to_string(),
        };
        let have_kcat = Command::new("kcat")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have_kcat {
            eprintln!("kcat is not installed: the examples using it are skipped");
        }
        Ok(Runner {
            doc: doc.to_string(),
            work,
            path,
            rewrite,
            have_kcat,
            _bin: bin,
            _data: data,
            _strand: strand,
        })
    }

    /// Runs a bash script to completion (bounded): its exit status and its stdout and
    /// stderr as one text, in the order written.
    fn bash(&self, script: &str) -> anyhow::Result<(bool, String)> {
        let mut child = Command::new("bash")
            .args(["-o", "pipefail", "-c", &format!("exec 2>&1\n{script}")])
            .current_dir(self.work.path())
            .env("PATH", &self.path)
            .env("STRAND_BOOTSTRAP", &self.rewrite.kafka)
            .env(
                "STRAND_REGISTRY",
                format!("http://{}", self.rewrite.registry),
            )
            .env_remove("STRAND_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawning bash")?;
        let mut stdout = child.stdout.take().context("stdout")?;
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let read = stdout.read_to_string(&mut text);
            let _ = tx.send(read.map(|_| text));
        });
        let text = match rx.recv_timeout(COMMAND_TIMEOUT) {
            Ok(text) => text?,
            Err(_) => {
                let _ = Command::new("kill").arg(pid.to_string()).status();
                let _ = child.wait();
                bail!("did not finish within {COMMAND_TIMEOUT:?}");
            }
        };
        Ok((child.wait()?.success(), text))
    }

    fn run_block(&self, block: &Block) -> anyhow::Result<()> {
        let at = format!("{}:{}", self.doc, block.line);
        if let Some(name) = block.info.iter().find_map(|w| w.strip_prefix("file=")) {
            let mut text = block.lines.join("\n");
            text.push('\n');
            std::fs::write(self.work.path().join(name), text)?;
            return Ok(());
        }
        let language = block.info.first().map(String::as_str).unwrap_or("");
        let no_run = block.info.iter().any(|w| w == "no-run");
        match language {
            "sh" if !no_run => {
                let script = self.rewrite.apply(&block.lines.join("\n"));
                if script.contains("kcat") && !self.have_kcat {
                    eprintln!("{at}: skipped (needs kcat)");
                    return Ok(());
                }
                let (ok, output) = self.bash(&format!("set -e\n{script}"))?;
                if !ok {
                    bail!("{at}: the script failed:\n{script}\n--- it printed:\n{output}");
                }
            }
            "console" => {
                for step in transcript(block)? {
                    self.run_step(&step)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn run_step(&self, step: &Step) -> anyhow::Result<()> {
        let at = format!("{}:{}", self.doc, step.line);
        if step.command.contains("kcat") && !self.have_kcat {
            eprintln!("{at}: skipped (needs kcat): {}", step.command);
            return Ok(());
        }
        let command = self.rewrite.apply(&step.command);
        let expected: Vec<String> = step.output.iter().map(|l| self.rewrite.apply(l)).collect();
        let must_fail = expected.iter().any(|l| l.starts_with("error: "));
        let (ok, output) = self
            .bash(&command)
            .with_context(|| format!("{at}: {command}"))?;
        let mut actual: Vec<&str> = output.lines().collect();
        while actual.last().is_some_and(|l| l.trim().is_empty()) {
            actual.pop();
        }
        if ok == must_fail || !output_matches(&expected, &actual) {
            bail!(
                "{at}: `{command}` {} and printed:\n{output}\n--- the document shows:\n{}",
                if ok { "succeeded" } else { "failed" },
                expected.join("\n")
            );
        }
        Ok(())
    }
}

/// Runs every block of `text` (from line `first_line` of `doc`) in order against one fresh
/// server.
fn run_document(doc: &str, first_line: usize, text: &str) -> anyhow::Result<()> {
    let runner = Runner::start(doc)?;
    let blocks = blocks(text, first_line);
    if blocks.is_empty() {
        bail!("{doc}: no code blocks found");
    }
    for block in &blocks {
        runner.run_block(block)?;
    }
    Ok(())
}

fn read_doc(relative: &str) -> anyhow::Result<String> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .join(relative);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

#[test]
fn docs_cli_examples_print_what_the_document_shows() -> anyhow::Result<()> {
    run_document("docs/cli.md", 1, &read_doc("docs/cli.md")?)
}

#[test]
fn readme_try_it_examples_print_what_the_readme_shows() -> anyhow::Result<()> {
    let readme = read_doc("README.md")?;
    let (line, try_it) = section(&readme, "## Try it")?;
    run_document("README.md", line, try_it)
}

#[test]
fn readme_and_serve_help_say_metrics_is_not_served_yet() -> anyhow::Result<()> {
    let readme = read_doc("README.md")?;
    for line in readme.lines().filter(|l| l.contains("/metrics")) {
        assert!(line.contains("not yet"), "README.md: {line}");
    }
    Ok(())
}

#[test]
fn output_forms_match_with_ellipses_and_squeezed_spaces() {
    let lines = |s: &str| s.lines().map(String::from).collect::<Vec<_>>();
    assert!(line_matches("a  b", "a b"));
    assert!(line_matches("id …", "id 42"));
    assert!(line_matches("{\"a\":…,\"c\":…}", "{\"a\":1,\"c\":2}"));
    assert!(!line_matches("id …", "name 42"));
    assert!(!line_matches("a", "ab"));
    assert!(output_matches(&lines("x\n…\nz"), &["x", "y", "y", "z"]));
    assert!(output_matches(&lines("x\n…\nz"), &["x", "z"]));
    assert!(!output_matches(&lines("x\n…\nz"), &["x", "y"]));
    assert!(!output_matches(&lines("x"), &["x", "y"]));
}

#[test]
fn transcripts_split_into_commands_and_outputs() -> anyhow::Result<()> {
    let text = "intro\n```console\n$ echo a \\\n  b\na b\n$ true\n```\n```sh no-run\nx\n```\n";
    let blocks = blocks(text, 1);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[1].info, ["sh", "no-run"]);
    let steps = transcript(&blocks[0])?;
    assert_eq!(
        steps,
        [
            Step {
                line: 3,
                command: "echo a \\\n  b".into(),
                output: vec!["a b".into()],
            },
            Step {
                line: 6,
                command: "true".into(),
                output: vec![],
            },
        ]
    );
    let rewrite = Rewrite {
        kafka: "k:1".into(),
        registry: "r:2".into(),
    };
    assert_eq!(
        rewrite.apply("cargo run -p strand-client --example produce_orders -- --count 3"),
        "produce_orders --bootstrap k:1 --registry http://r:2 --count 3"
    );
    assert_eq!(
        rewrite.apply("kcat -b 127.0.0.1:9092; curl http://127.0.0.1:8081/x"),
        "kcat -b k:1; curl http://r:2/x"
    );
    let doc = "# t\n## Try it\nin\n### sub\nsub\n## Next\nout\n";
    assert_eq!(
        section(doc, "## Try it")?,
        (2, "## Try it\nin\n### sub\nsub")
    );
    Ok(())
}
